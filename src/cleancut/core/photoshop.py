"""Photoshop paths: Image Resource Blocks (IRB) and how JPEG and TIFF files carry them.

A clipping path is two resources: a saved path (id 2000, named by the block's own Pascal
name) made of 26-byte records, and resource 2999 naming the path that clips. The same IRB
bytes go into a JPEG APP13 "Photoshop 3.0" segment, TIFF tag 34377 and the PSD image
resources section. Layouts: ``/work/shared/specs/photoshop-path.md`` (Adobe's "Path resource
format"); everything is big-endian.

Path records hold points as signed 8.24 fixed-point fractions of the image height and width,
vertical first, with (0, 0) the top-left image corner. Subpath length records are written
with operation 0 (exclude), so overlapping subpaths cancel: holes work by the even-odd rule.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

from cleancut.core.types import U8
from cleancut.core.vector import Knot, Subpath
from cleancut.errors import CorruptImage, InvalidInput, InvalidOptions

PATH_FIRST, PATH_LAST = 2000, 2997
CLIPPING_PATH = 2999
ICC_PROFILE = 1039
TIFF_PHOTOSHOP_TAG = 34377
DEFAULT_PATH_NAME = "Clipping Path"  # odd length: every reader agrees on resource 2999

APP13_HEADER = b"Photoshop 3.0\x00"
_APP13_CHUNK = 0xFFFF - 2 - len(APP13_HEADER)  # IRB bytes one APP13 segment carries
_SIGNATURES = (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa")
_NAME_CODEC = "mac_roman"
_ONE = 1 << 24  # 8.24 fixed point
_LIMIT = (-(1 << 28), (1 << 28) - 1)  # -16 <= v < 16

# Path record selectors.
_CLOSED_LEN, _CLOSED_LINKED, _CLOSED_UNLINKED = 0, 1, 2
_OPEN_LEN, _OPEN_LINKED, _OPEN_UNLINKED = 3, 4, 5
_FILL_RULE, _CLIPBOARD, _INITIAL_FILL = 6, 7, 8
_RECORD = np.dtype([("sel", ">u2"), ("v", ">i4", (6,))])  # 26 bytes


@dataclass(frozen=True)
class Resource:
    """One image resource block."""

    id: int
    data: bytes
    name: str = ""
    signature: bytes = b"8BIM"


@dataclass(frozen=True)
class SavedPath:
    id: int
    name: str
    subpaths: list[Subpath]
    clipping: bool  # named by resource 2999


# ---------------------------------------------------------------------------------------------
# Image resource blocks


def _pascal(name: str, *, pad: bool) -> bytes:
    try:
        raw = name.encode(_NAME_CODEC)
    except UnicodeEncodeError:
        raise InvalidOptions(f"resource name {name!r} is not MacRoman text") from None
    if len(raw) > 255:
        raise InvalidOptions("resource names are at most 255 bytes")
    out = bytes([len(raw)]) + raw
    return out + b"\0" if pad and len(out) % 2 else out


def resource_block(res: Resource) -> bytes:
    """``signature, id, padded Pascal name, u32 size, data, pad to even``."""
    head = res.signature + struct.pack(">H", res.id) + _pascal(res.name, pad=True)
    pad = b"\0" if len(res.data) % 2 else b""
    return head + struct.pack(">I", len(res.data)) + res.data + pad


def build_irb(resources: Iterable[Resource]) -> bytes:
    """Blocks end to end, in ascending id order (stable for equal ids)."""
    return b"".join(resource_block(r) for r in sorted(resources, key=lambda r: r.id))


def parse_irb(irb: bytes) -> list[Resource]:
    out: list[Resource] = []
    pos, end = 0, len(irb)
    while pos < end:
        if end - pos < 12:
            if irb[pos:].strip(b"\0"):
                raise CorruptImage("truncated Photoshop resource block")
            break
        sig = irb[pos : pos + 4]
        if sig not in _SIGNATURES:
            raise CorruptImage(f"bad Photoshop resource signature {sig!r}")
        (rid,) = struct.unpack_from(">H", irb, pos + 4)
        nlen = irb[pos + 6]
        name = irb[pos + 7 : pos + 7 + nlen].decode(_NAME_CODEC)
        pos += 6 + ((nlen + 2) & ~1)
        if pos + 4 > end:
            raise CorruptImage("truncated Photoshop resource block")
        (size,) = struct.unpack_from(">I", irb, pos)
        if pos + 4 + size > end:
            raise CorruptImage(f"Photoshop resource {rid} runs past its container")
        out.append(Resource(rid, bytes(irb[pos + 4 : pos + 4 + size]), name, bytes(sig)))
        pos += 4 + size + (size & 1)
    return out


def merge_irb(old: bytes, new: bytes) -> bytes:
    """``old`` with ``new``'s resources added or replaced; new paths replace all old ones."""
    fresh = parse_irb(new)
    ids = {r.id for r in fresh}
    has_paths = any(PATH_FIRST <= i <= CLIPPING_PATH for i in ids)
    kept = [
        r
        for r in parse_irb(old)
        if r.id not in ids and not (has_paths and PATH_FIRST <= r.id <= CLIPPING_PATH)
    ]
    return build_irb([*kept, *fresh])


# ---------------------------------------------------------------------------------------------
# Path records


def path_data(subpaths: Sequence[Subpath], width: int, height: int) -> bytes:
    """The records of one path resource: fill rule, initial fill, then each subpath."""
    if width <= 0 or height <= 0:
        raise InvalidInput("paths need a positive image size")
    rec = np.zeros(2 + sum(len(sp.knots) + 1 for sp in subpaths), _RECORD)
    rec["sel"][0], rec["sel"][1] = _FILL_RULE, _INITIAL_FILL
    rows: list[int] = []
    sels: list[int] = []
    coords: list[tuple[float, ...]] = []
    i = 2
    for sp in subpaths:
        n = len(sp.knots)
        if not 0 < n <= 0xFFFF:
            raise InvalidInput("a subpath needs 1 to 65535 knots")
        rec["sel"][i] = _CLOSED_LEN if sp.closed else _OPEN_LEN
        rec["v"][i, 0] = struct.unpack(">i", struct.pack(">HH", n, 0))[0]  # u16 count, zeros
        linked, unlinked = (
            (_CLOSED_LINKED, _CLOSED_UNLINKED) if sp.closed else (_OPEN_LINKED, _OPEN_UNLINKED)
        )
        rows.extend(range(i + 1, i + 1 + n))
        sels.extend(linked if k.linked else unlinked for k in sp.knots)
        coords.extend((*k.preceding[::-1], *k.anchor[::-1], *k.leaving[::-1]) for k in sp.knots)
        i += n + 1
    if rows:  # (y, x) per point, as fractions of the image size in 8.24 fixed point
        rel = np.array(coords) / np.array([height, width] * 3, np.float64)
        rec["v"][rows] = np.clip(np.round(rel * _ONE), *_LIMIT).astype(np.int64)
        rec["sel"][rows] = sels
    return rec.tobytes()


def parse_path_data(data: bytes, width: int, height: int) -> list[Subpath]:
    """Subpaths (pixel coordinates) from a path resource's records."""
    if len(data) % _RECORD.itemsize:
        raise CorruptImage("path resource size is not a multiple of 26 bytes")
    rec = np.frombuffer(data, _RECORD)
    sel = rec["sel"].tolist()
    vals = rec["v"].astype(np.float64) / _ONE
    out: list[Subpath] = []
    i = 0
    while i < len(sel):
        if sel[i] not in (_CLOSED_LEN, _OPEN_LEN):
            i += 1  # fill rule, clipboard, initial fill, or a stray knot
            continue
        n = (int(rec["v"][i, 0]) & 0xFFFFFFFF) >> 16
        if i + n >= len(sel):
            raise CorruptImage("path subpath runs past its resource")
        knots = []
        for v in vals[i + 1 : i + 1 + n]:
            y0, x0, y1, x1, y2, x2 = (float(t) for t in v)
            knots.append(
                Knot(
                    preceding=(x0 * width, y0 * height),
                    anchor=(x1 * width, y1 * height),
                    leaving=(x2 * width, y2 * height),
                )
            )
        if knots:
            out.append(Subpath(tuple(knots), closed=sel[i] == _CLOSED_LEN))
        i += n + 1
    return out


def path_resources(
    subpaths: Sequence[Subpath],
    width: int,
    height: int,
    *,
    name: str = DEFAULT_PATH_NAME,
    clipping: bool = True,
    flatness: float = 0.0,
) -> bytes:
    """IRB bytes: the path as resource 2000 and, with ``clipping``, resource 2999 naming it.

    ``flatness`` is the device-pixel flatness Photoshop prints the clip with (0 = printer
    default). Resource 2999 is written as Photoshop does (the name unpadded, then 16.16 fixed
    flatness and a zero fill rule); with a name of odd length, like the default, every reader
    agrees on that layout.
    """
    if not name:
        raise InvalidOptions("a path needs a name")
    if not (flatness == 0.0 or 0.2 <= flatness <= 100.0):
        raise InvalidOptions("flatness is 0 (device default) or 0.2 to 100 device pixels")
    blocks = [Resource(PATH_FIRST, path_data(subpaths, width, height), name)]
    if clipping:
        clip = _pascal(name, pad=False) + struct.pack(">iH", round(flatness * 65536), 0)
        blocks.append(Resource(CLIPPING_PATH, clip))
    return build_irb(blocks)


def read_paths(irb: bytes, width: int, height: int) -> list[SavedPath]:
    """Every saved path (ids 2000-2997) in an IRB, marking the one 2999 names."""
    resources = parse_irb(irb)
    clip = clipping_path_name(irb, resources)
    return [
        SavedPath(r.id, r.name, parse_path_data(r.data, width, height), r.name == clip)
        for r in resources
        if PATH_FIRST <= r.id <= PATH_LAST
    ]


def clipping_path_name(irb: bytes, resources: Sequence[Resource] | None = None) -> str | None:
    for r in resources if resources is not None else parse_irb(irb):
        if r.id == CLIPPING_PATH and r.data:
            return r.data[1 : 1 + r.data[0]].decode(_NAME_CODEC)
    return None


# ---------------------------------------------------------------------------------------------
# JPEG


def _jpeg_header(jpeg: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, start, end) of each APPn/COM segment after SOI, and where the rest begins."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise InvalidInput("not a JPEG (no SOI marker)")
    segments: list[tuple[int, int, int]] = []
    pos = 2
    while True:
        if pos + 4 > len(jpeg) or jpeg[pos] != 0xFF:
            raise CorruptImage("JPEG header is truncated or malformed")
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            return segments, pos
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > len(jpeg):
            raise CorruptImage("JPEG segment runs past the end of the file")
        segments.append((marker, pos, end))
        pos = end


def _is_photoshop(jpeg: bytes, marker: int, start: int) -> bool:
    return marker == 0xED and jpeg.startswith(APP13_HEADER, start + 4)


def jpeg_irb(jpeg: bytes) -> bytes:
    """The IRB a JPEG carries: its APP13 "Photoshop 3.0" payloads, concatenated."""
    segments, _ = _jpeg_header(jpeg)
    return b"".join(
        jpeg[s + 4 + len(APP13_HEADER) : e] for m, s, e in segments if _is_photoshop(jpeg, m, s)
    )


def app13_segments(irb: bytes) -> bytes:
    """APP13 segments carrying ``irb``, split over consecutive segments when it is large."""
    out = bytearray()
    for i in range(0, len(irb), _APP13_CHUNK):
        chunk = irb[i : i + _APP13_CHUNK]
        out += b"\xff\xed" + struct.pack(">H", 2 + len(APP13_HEADER) + len(chunk))
        out += APP13_HEADER + chunk
    return bytes(out)


def embed_in_jpeg(jpeg: bytes, irb: bytes) -> bytes:
    """``jpeg`` with ``irb`` in APP13, after its JFIF/Exif/XMP/ICC segments.

    An existing Photoshop APP13 is merged rather than duplicated: its other resources (IPTC,
    ...) stay, and its paths give way to the new ones.
    """
    segments, body = _jpeg_header(jpeg)
    old = jpeg_irb(jpeg)
    merged = merge_irb(old, irb) if old else irb
    kept = [(m, s, e) for m, s, e in segments if not _is_photoshop(jpeg, m, s)]
    at = max((i + 1 for i, (m, _, _) in enumerate(kept) if m <= 0xE2), default=0)
    parts = [jpeg[:2]]
    parts += [jpeg[s:e] for _, s, e in kept[:at]]
    parts.append(app13_segments(merged))
    parts += [jpeg[s:e] for _, s, e in kept[at:]]
    parts.append(jpeg[body:])
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# TIFF


def tiff_with_paths(pixels: U8, irb: bytes, *, icc_profile: bytes | None = None) -> bytes:
    """A deflate-compressed TIFF of ``pixels`` (H×W grey, H×W×3 RGB or H×W×4 RGBA, whose
    alpha becomes an unassociated extra sample) carrying ``irb`` in tag 34377 (BYTE)."""
    if pixels.dtype != np.uint8 or not (
        pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))
    ):
        raise InvalidInput("tiff_with_paths() needs H×W, H×W×3 or H×W×4 uint8 pixels")
    image = Image.fromarray(np.ascontiguousarray(pixels))
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[TIFF_PHOTOSHOP_TAG] = irb
    ifd.tagtype[TIFF_PHOTOSHOP_TAG] = TiffTags.BYTE
    buf = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    image.save(buf, "TIFF", tiffinfo=ifd, compression="tiff_adobe_deflate", **extra)
    return buf.getvalue()
