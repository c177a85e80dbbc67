"""PSD and PSB: the merged (composite) image a Photoshop document stores after its layers.

Read here rather than by Pillow, whose plugin knows neither PSB nor 16- and 32-bit
documents, drops the alpha of grey and CMYK documents, and takes any fourth RGB
channel for transparency. Layers are never composited: the merged image is what
Photoshop itself shows (documents saved without "Maximize Compatibility" may carry
a blank one; that is the file's content, not ours to second-guess).

Layout (Adobe's "Photoshop File Formats Specification"; big-endian): a 26-byte header,
colour-mode data (the palette of indexed images), image resources (ICC profile,
transparent index, alpha-channel identifiers), layer and mask information (read only
for the layer count and the keys of its tagged blocks), then the merged image: a
compression code and every channel as a plane.

Transparency: the first channel after the colour channels is the merged image's
alpha when the layer count is negative or a merged-transparency block (Mtrn, Mt16,
Mt32) is present, as Photoshop writes it, and then RGB and grey colour is stored
composited over white, which is undone. A flat file without layers and without
Photoshop's alpha-channel identifiers (other programs' RGBA) also gets alpha, taken
as straight. With layers, extra channels are saved selections or spot colours, not
transparency, and are ignored.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageCms

from cleancut.core.io_decode_base import check_size, finish, from_rgb, srgb_profile, u16_to_u8
from cleancut.core.io_decode_hdr import linear_to_srgb8
from cleancut.core.types import F32, U8, DecodedImage
from cleancut.errors import CorruptImage, UnsupportedFormat

_BITMAP, _GRAY, _INDEXED, _RGB, _CMYK, _MULTICHANNEL, _DUOTONE, _LAB = 0, 1, 2, 3, 4, 7, 8, 9
# colour mode -> (colour channels, bit depths Photoshop allows for it)
_MODES: Final = {
    _BITMAP: (1, (1,)),
    _GRAY: (1, (8, 16, 32)),
    _INDEXED: (1, (8,)),
    _RGB: (3, (8, 16, 32)),
    _CMYK: (4, (8, 16)),
    _DUOTONE: (1, (8, 16)),  # the first ink's tones, shown as grey (as Photoshop's preview)
    _LAB: (3, (8, 16)),
}
_MAX_SIDE: Final = {1: 30_000, 2: 300_000}
_ICC, _TRANSPARENT_INDEX, _ALPHA_IDS = 1039, 1047, 1053
_MERGED_TRANSPARENCY: Final = frozenset({b"Mtrn", b"Mt16", b"Mt32"})
_DEEP_LAYER_INFO: Final = frozenset({b"Lr16", b"Lr32"})
# Tagged blocks whose length is 8 bytes in a PSB.
_PSB_LONG_KEYS: Final = frozenset(
    {b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk"}
    | {b"lnk2", b"FEid", b"FXid", b"PxSD"}
)
_RAW, _RLE, _ZIP, _ZIP_PREDICTED = 0, 1, 2, 3
# Real documents hold tens of resources and tagged blocks; a crafted file holding
# millions must not keep a worker busy walking them.
_MAX_ENTRIES: Final = 4096


@dataclass(frozen=True)
class _Header:
    psb: bool
    channels: int
    height: int
    width: int
    depth: int
    mode: int

    @property
    def row_bytes(self) -> int:
        return (self.width * self.depth + 7) // 8


@dataclass(frozen=True)
class _Transparency:
    present: bool  # the first extra channel is the merged image's alpha
    over_white: bool  # and the colour was stored composited over white


def decode_psd(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    header = _read_header(data)
    check_size((header.width, header.height), max_pixels)
    try:
        return _decode(memoryview(data), header, fmt)
    except (struct.error, ValueError, IndexError, OSError, zlib.error) as e:
        raise CorruptImage(f"the {fmt.upper()} data is truncated or corrupt: {e}") from None


def _read_header(data: bytes) -> _Header:
    if len(data) < 26:
        raise CorruptImage("the PSD header is truncated")
    version, channels, height, width, depth, mode = struct.unpack_from(">H6xHIIHH", data, 4)
    if version not in _MAX_SIDE or not 1 <= channels <= 56:
        raise CorruptImage(f"not a valid PSD header (version {version}, {channels} channels)")
    if not (0 < width <= _MAX_SIDE[version] and 0 < height <= _MAX_SIDE[version]):
        raise CorruptImage(f"PSD dimensions {width}x{height} are outside the format's range")
    if mode == _MULTICHANNEL:
        raise UnsupportedFormat("multichannel PSD documents have no defined colour")
    if mode not in _MODES:
        raise CorruptImage(f"unknown PSD colour mode {mode}")
    if depth not in _MODES[mode][1]:
        raise UnsupportedFormat(
            f"{depth}-bit PSD documents in colour mode {mode} are not supported"
        )
    if channels < _MODES[mode][0]:
        raise CorruptImage(f"the PSD has {channels} channels, too few for its colour mode")
    return _Header(version == 2, channels, height, width, depth, mode)


class _Cursor:
    def __init__(self, data: memoryview, pos: int) -> None:
        self.data, self.pos = data, pos

    def uint(self, size: int) -> int:
        end = self.pos + size
        if end > len(self.data):
            raise CorruptImage("the PSD ends inside its section lengths")
        value = int.from_bytes(self.data[self.pos : end], "big")
        self.pos = end
        return value

    def section(self, length_size: int) -> memoryview:
        length = self.uint(length_size)
        end = self.pos + length
        if end > len(self.data):
            raise CorruptImage("a PSD section runs past the end of the file")
        block = self.data[self.pos : end]
        self.pos = end
        return block


def _decode(data: memoryview, header: _Header, fmt: str) -> DecodedImage:
    cursor = _Cursor(data, 26)
    palette = cursor.section(4)
    resources = _resources(cursor.section(4))
    layer_count, keys = _layer_summary(cursor.section(8 if header.psb else 4), header.psb)
    compression = cursor.uint(2)
    colour_channels = _MODES[header.mode][0]
    transparency = _transparency(header, colour_channels, layer_count, keys, resources)
    wanted = colour_channels + int(transparency.present)
    planes = [_samples(p, header) for p in _planes(data, cursor.pos, header, compression, wanted)]
    colour = planes[:colour_channels]
    alpha = planes[colour_channels] if transparency.present else None
    if alpha is not None and transparency.over_white and header.mode in (_RGB, _GRAY):
        colour = _unmatte(colour, alpha, header.depth)
    alpha8 = None if alpha is None else _alpha_to_u8(alpha, header.depth)
    icc = resources.get(_ICC)
    if header.mode == _LAB:
        return from_rgb(_lab_to_srgb(colour, header.depth), alpha8, fmt)
    if header.mode == _INDEXED:
        return _indexed(colour[0], palette, resources.get(_TRANSPARENT_INDEX), fmt, icc)
    image = _colour_image(colour, header)
    return finish(image, alpha8, fmt, None if icc is None else bytes(icc))


def _resources(block: memoryview) -> dict[int, memoryview]:
    found: dict[int, memoryview] = {}
    pos = 0
    for _ in range(_MAX_ENTRIES):
        if pos + 12 > len(block):
            break
        (rid,) = struct.unpack_from(">H", block, pos + 4)
        name_length = block[pos + 6]
        pos += 6 + (name_length + 2) // 2 * 2  # Pascal name, padded to even
        if pos + 4 > len(block):
            break
        (size,) = struct.unpack_from(">I", block, pos)
        found.setdefault(rid, block[pos + 4 : pos + 4 + size])
        pos += 4 + (size + 1) // 2 * 2
    return found


def _layer_summary(section: memoryview, psb: bool) -> tuple[int | None, set[bytes]]:
    """The layer count (None without layer records) and the keys of the tagged blocks."""
    if not section:
        return None, set()
    size = 8 if psb else 4
    info_length = int.from_bytes(section[:size], "big")
    count = _count(section[size : size + info_length])
    pos = size + info_length
    mask_length = int.from_bytes(section[pos : pos + 4], "big")
    pos += 4 + mask_length
    keys: set[bytes] = set()
    for _ in range(_MAX_ENTRIES):
        if pos + 12 > len(section) or bytes(section[pos : pos + 4]) not in (b"8BIM", b"8B64"):
            break
        key = bytes(section[pos + 4 : pos + 8])
        length_size = 8 if psb and key in _PSB_LONG_KEYS else 4
        start = pos + 8 + length_size
        length = int.from_bytes(section[pos + 8 : start], "big")
        keys.add(key)
        if key in _DEEP_LAYER_INFO and count is None:
            count = _count(section[start : start + length])
        pos = _next_block(section, start + length)
    return count, keys


def _count(layer_info: memoryview) -> int | None:
    if len(layer_info) < 2:
        return None
    value: int = struct.unpack_from(">h", layer_info)[0]
    return value


def _next_block(section: memoryview, end: int) -> int:
    # Writers pad tagged blocks to 2 or to 4 bytes, some outside the length they write.
    for candidate in (end, end + end % 2, end + -end % 4):
        if bytes(section[candidate : candidate + 4]) in (b"8BIM", b"8B64"):
            return candidate
    return len(section)


def _transparency(
    header: _Header,
    colour_channels: int,
    layer_count: int | None,
    keys: set[bytes],
    resources: dict[int, memoryview],
) -> _Transparency:
    if header.channels <= colour_channels or header.mode in (_BITMAP, _INDEXED):
        return _Transparency(present=False, over_white=False)
    if keys & _MERGED_TRANSPARENCY or (layer_count is not None and layer_count < 0):
        return _Transparency(present=True, over_white=True)
    flat = not layer_count and _ALPHA_IDS not in resources
    return _Transparency(present=flat, over_white=False)


def _planes(data: memoryview, pos: int, header: _Header, compression: int, wanted: int) -> list[U8]:
    """The first ``wanted`` channels of the merged image, each H×(row bytes) uint8."""
    shape = (header.height, header.row_bytes)
    plane_size = shape[0] * shape[1]
    if compression == _RAW:
        if pos + wanted * plane_size > len(data):
            raise CorruptImage("the PSD image data is truncated")
        return [
            np.frombuffer(data, np.uint8, plane_size, pos + i * plane_size).reshape(shape)
            for i in range(wanted)
        ]
    if compression == _RLE:
        return _rle_planes(data, pos, header, wanted)
    if compression in (_ZIP, _ZIP_PREDICTED):
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data[pos:], wanted * plane_size)
        if len(raw) < wanted * plane_size:
            raise CorruptImage("the PSD image data is truncated")
        planes = np.frombuffer(raw, np.uint8).reshape(wanted, *shape)
        return [_unpredict(p, header.depth) if compression == _ZIP_PREDICTED else p for p in planes]
    raise CorruptImage(f"unknown PSD compression {compression}")


def _rle_planes(data: memoryview, pos: int, header: _Header, wanted: int) -> list[U8]:
    rows = header.channels * header.height
    count_type = ">u4" if header.psb else ">u2"
    table_end = pos + rows * np.dtype(count_type).itemsize
    if table_end > len(data):
        raise CorruptImage("the PSD image data is truncated")
    counts = np.frombuffer(data, count_type, rows, pos).astype(np.int64)
    sizes = counts.reshape(header.channels, header.height).sum(axis=1)
    starts = table_end + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    planes = []
    for channel in range(wanted):
        start, size = int(starts[channel]), int(sizes[channel])
        if start + size > len(data):
            raise CorruptImage("the PSD image data is truncated")
        # Rows are PackBits-coded one by one, and decode back to back as one stream.
        decoded = Image.frombytes(
            "L",
            (header.row_bytes, header.height),
            bytes(data[start : start + size]),
            "packbits",
            "L",
        )
        planes.append(np.asarray(decoded))
    return planes


def _unpredict(plane: U8, depth: int) -> U8:
    """Undo ZIP-with-prediction: each sample was stored as its difference to the left one."""
    if depth == 8:
        return np.cumsum(plane, axis=1, dtype=np.uint8)
    if depth == 16:
        summed = np.cumsum(plane.view(">u2").astype(np.uint16), axis=1, dtype=np.uint16)
        return summed.astype(">u2").view(np.uint8)
    raise UnsupportedFormat(f"{depth}-bit PSD data compressed with prediction is not supported")


def _samples(plane: U8, header: _Header) -> np.ndarray:
    """A channel's samples at their own depth: bool (1-bit set = black), uint8, uint16, float32."""
    if header.depth == 1:
        return np.unpackbits(plane, axis=1, count=header.width).astype(bool)
    if header.depth == 16:
        return plane.view(">u2").astype(np.uint16)
    if header.depth == 32:
        return np.nan_to_num(plane.view(">f4").astype(np.float32))
    return plane


def _unit(samples: np.ndarray, depth: int) -> F32:
    if depth == 8:
        return samples.astype(np.float32) / np.float32(255)
    if depth == 16:
        return samples.astype(np.float32) / np.float32(65535)
    return samples.astype(np.float32)


def _unmatte(colour: list[np.ndarray], alpha: np.ndarray, depth: int) -> list[np.ndarray]:
    """Undo the white Photoshop composites transparent pixels over: C = c·a + (1 − a)."""
    a = np.clip(_unit(alpha, depth), 0.0, 1.0)
    covered = a > 0.0
    out = []
    for samples in colour:
        c = _unit(samples, depth)
        c[covered] = 1.0 - (1.0 - c[covered]) / a[covered]
        c = np.clip(c, 0.0, None if depth == 32 else 1.0)
        if depth == 32:
            out.append(c)
        else:
            top = 255 if depth == 8 else 65535
            out.append(np.rint(c * top).astype(np.uint8 if depth == 8 else np.uint16))
    return out


def _to_u8(samples: np.ndarray, depth: int) -> U8:
    if depth == 1:
        return np.where(samples, 0, 255).astype(np.uint8)
    if depth == 16:
        return u16_to_u8(samples)
    if depth == 32:
        # 32-bit documents hold linear light, shown through the sRGB curve.
        return linear_to_srgb8(samples)
    return samples.astype(np.uint8, copy=False)


def _alpha_to_u8(alpha: np.ndarray, depth: int) -> U8:
    if depth == 32:
        out: U8 = np.rint(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
        return out
    return _to_u8(alpha, depth)


def _colour_image(colour: list[np.ndarray], header: _Header) -> Image.Image:
    planes = [_to_u8(c, header.depth) for c in colour]
    if header.mode == _CMYK:
        # PSD stores ink inverted (255 is no ink); Pillow's CMYK counts ink up.
        return _image("CMYK", 255 - np.dstack(planes))
    if len(planes) == 1:
        return Image.fromarray(planes[0])
    return Image.fromarray(np.dstack(planes))


def _image(mode: str, pixels: U8) -> Image.Image:
    """A Pillow mode numpy's shape cannot name (CMYK is H×W×4 like RGBA)."""
    height, width = pixels.shape[:2]
    return Image.frombytes(mode, (width, height), np.ascontiguousarray(pixels).tobytes())


def _lab_to_srgb(colour: list[np.ndarray], depth: int) -> U8:
    # 8-bit Lab as Photoshop stores it (L 0-255 for 0-100, a and b offset by 128) is
    # how Pillow's LAB bands hold it; merging bands skips the raw "LAB" unpacker, which
    # expects a and b as signed bytes.
    lab = Image.merge("LAB", [Image.fromarray(_to_u8(c, depth)) for c in colour])
    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), srgb_profile(), "LAB", "RGB")
    return np.asarray(ImageCms.applyTransform(lab, transform))


def _indexed(
    index: np.ndarray,
    palette: memoryview,
    transparent: memoryview | None,
    fmt: str,
    icc: memoryview | None,
) -> DecodedImage:
    if len(palette) < 768:
        raise CorruptImage("the indexed PSD has no colour table")
    # The table is planar: 256 reds, then 256 greens, then 256 blues.
    table = np.frombuffer(palette, np.uint8, 768).reshape(3, 256).T
    alpha = None
    if transparent is not None and len(transparent) >= 2:
        (slot,) = struct.unpack_from(">H", transparent)
        alpha = np.where(index == slot, 0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(table[index]))
    return finish(image, alpha, fmt, None if icc is None else bytes(icc))
