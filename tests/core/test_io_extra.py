"""TGA, PSD/PSB, EXR, Radiance HDR and camera RAW inputs, from files written here.

Each format is written by an independent writer where one exists (Pillow for TGA,
psd-tools and cleancut's own PSD writer, the OpenEXR package, OpenCV for Radiance,
tifffile for DNG) and otherwise by hand from the format's specification.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from cleancut.core.io import INPUT_FORMATS, decode, sniff_format
from cleancut.core.psd import packbits, write_psd
from cleancut.core.types import DecodedImage
from cleancut.errors import CorruptImage, ImageTooLarge, InvalidInput, UnsupportedFormat
from tests.core.test_io import smooth_rgb, smooth_rgba, swapped_primaries_profile

MID_GREY_SRGB = 118  # 0.18 linear through the sRGB curve


def openexr() -> ModuleType:
    import OpenEXR

    return OpenEXR


def tifffile() -> ModuleType:
    import tifffile

    return tifffile


# ---------------------------------------------------------------- helpers


def assert_well_formed(d: DecodedImage, size: tuple[int, int] | None = None) -> None:
    assert d.rgb.dtype == np.uint8
    assert d.rgb.ndim == 3
    assert d.rgb.shape[2] == 3
    assert d.rgb.flags.c_contiguous
    if d.alpha is not None:
        assert d.alpha.dtype == np.uint8
        assert d.alpha.shape == d.rgb.shape[:2]
        assert d.alpha.flags.c_contiguous
    if size is not None:
        assert d.size == size


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def save(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def pillow_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def chroma(colour: np.ndarray) -> int:
    return int(colour.max()) - int(colour.min())


def patches_linear() -> np.ndarray:
    """Four 16x16 patches in linear light: dim red, mid grey, bright green, very bright blue."""
    img = np.zeros((16, 64, 3), np.float32)
    img[:, 0:16] = (0.30, 0.02, 0.02)
    img[:, 16:32] = (0.18, 0.18, 0.18)
    img[:, 32:48] = (0.05, 1.50, 0.05)
    img[:, 48:64] = (0.50, 0.50, 12.0)
    return img


def assert_patches_tone_mapped(rgb: np.ndarray) -> None:
    red, grey, green, blue = (rgb[8, x].astype(int) for x in (8, 24, 40, 56))
    assert red[0] > red[1] + 60 and red[0] > red[2] + 60
    assert abs(grey[0] - grey[1]) <= 1 and abs(grey[1] - grey[2]) <= 1
    assert green[1] > green[0] + 60 and green[1] > green[2] + 60
    assert blue[2] > blue[0] + 60 and blue[2] > blue[1] + 60
    # Brightness keeps its order: luminance of red < grey < green, and blue's is the largest.
    luma = [0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] for c in (red, grey, green)]
    assert luma[0] < luma[1] < luma[2]
    assert blue.max() == 255  # the brightest patch lands on white


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03", "psd"),
        (b"8BPS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03", "psb"),
        (b"\x76\x2f\x31\x01\x02\x00\x00\x00channels", "exr"),
        (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n", "hdr"),
        (b"#?RGBE\n\n-Y 2 +X 2\n", "hdr"),
        (b"FUJIFILMCCD-RAW 0201FF383501", "raf"),
        (b"IIRO\x08\x00\x00\x00", "orf"),
        (b"IIRS\x08\x00\x00\x00", "orf"),
        (b"MMOR\x00\x00\x00\x08", "orf"),
        (b"IIU\x00\x18\x00\x00\x00", "rw2"),
        (b"\x00MRM\x00\x00\x00\x10", "mrw"),
        (b"FOVb\x00\x00\x02\x00", "x3f"),
        (b"II\x1a\x00\x00\x00HEAPCCDR", "crw"),
        (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom", "cr3"),
        (b"II*\x00\x10\x00\x00\x00CR\x02\x00\x00\x00\x00\x00", "cr2"),
        (b"#?RADIANCE", None),  # no newline: a text file that merely starts so
        (b"8BP", None),
    ],
)
def test_sniff_new_signatures(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected
    if expected is not None:
        assert expected in INPUT_FORMATS


def test_input_formats_lists_the_new_formats() -> None:
    assert {"tga", "psd", "psb", "exr", "hdr", "dng", "cr2", "cr3", "nef", "arw"} <= INPUT_FORMATS
    assert {"raf", "orf", "rw2"} <= INPUT_FORMATS


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P"])
@pytest.mark.parametrize("rle", [False, True])
def test_sniff_tga_written_by_pillow(mode: str, rle: bool) -> None:
    img = Image.fromarray(smooth_rgba()).convert(mode)
    data = save(img, "TGA", compression="tga_rle" if rle else None)
    assert sniff_format(data) == "tga"
    assert sniff_format(data[:18]) == "tga"


TEXTS = [
    b"hello world, this is just text and no image at all",
    b"\x00\x00\x02\x00 not quite",
    b"<?xml version='1.0'?><svg/>",
    b'{"json": true, "values": [1, 2, 3]}',
    "größe: ünïcödé text".encode(),
    "utf-16 text".encode("utf-16-le"),
    "utf-16 text".encode("utf-16"),
]
OTHER_BINARIES = [
    b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00\x68\x04\x00\x00\x16\x00",  # ICO
    b"\x00\x00\x02\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00\x68\x04\x00\x00\x16\x00",  # CUR
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(20),
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3" + bytes(20),
    b"\x7fELF\x02\x01\x01\x00" + bytes(20),
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes(20),
    b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(20),
    b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20),
    b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(8),
    bytes(64),
    b"\x00\x01\x00\x00\x00" + bytes(40),  # a TrueType font
]


@pytest.mark.parametrize("data", TEXTS + OTHER_BINARIES)
def test_text_and_other_binaries_are_not_images(data: bytes) -> None:
    assert sniff_format(data) is None
    with pytest.raises(UnsupportedFormat):
        decode(data)


def test_random_bytes_are_never_taken_for_tga() -> None:
    rng = np.random.default_rng(5)
    blobs = [rng.integers(0, 256, 64, dtype=np.uint8).tobytes() for _ in range(20_000)]
    assert [sniff_format(b) for b in blobs].count("tga") == 0
    with pytest.raises(UnsupportedFormat):
        decode(blobs[0])


def test_empty_input_is_still_invalid() -> None:
    assert sniff_format(b"") is None
    with pytest.raises(InvalidInput, match="empty"):
        decode(b"")


def tga_header(**fields: int) -> bytes:
    values = {
        "id_length": 0,
        "map_type": 0,
        "image_type": 2,
        "map_first": 0,
        "map_length": 0,
        "map_depth": 0,
        "width": 4,
        "height": 3,
        "depth": 24,
        "descriptor": 0x20,
    } | fields
    return struct.pack(
        "<BBBHHBHHHHBB",
        values["id_length"],
        values["map_type"],
        values["image_type"],
        values["map_first"],
        values["map_length"],
        values["map_depth"],
        0,
        0,
        values["width"],
        values["height"],
        values["depth"],
        values["descriptor"],
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"map_type": 2},
        {"image_type": 0},
        {"image_type": 4},
        {"image_type": 32},  # Huffman-coded, which Pillow cannot read
        {"depth": 12},
        {"depth": 8},  # true-colour at 8 bits
        {"image_type": 3, "depth": 24},  # grey at 24 bits
        {"width": 0},
        {"height": 0},
        {"descriptor": 0x60},  # interleaving bits
        {"descriptor": 0x08},  # 8 alpha bits in a 24-bit pixel
        {"image_type": 1, "depth": 8},  # colour-mapped without a map
        {"image_type": 1, "depth": 8, "map_type": 1, "map_length": 0, "map_depth": 24},
        {"image_type": 1, "depth": 8, "map_type": 1, "map_length": 256, "map_depth": 7},
    ],
)
def test_sniff_tga_rejects_inconsistent_headers(fields: dict[str, int]) -> None:
    assert sniff_format(tga_header()) == "tga"
    assert sniff_format(tga_header(**fields)) is None


# ---------------------------------------------------------------- TGA


@pytest.mark.parametrize("rle", [False, True])
@pytest.mark.parametrize("orientation", [1, -1])
def test_tga_round_trips_rgb(rle: bool, orientation: int) -> None:
    pixels = smooth_rgb()
    data = save(
        Image.fromarray(pixels),
        "TGA",
        compression="tga_rle" if rle else None,
        orientation=orientation,
    )
    d = decode(data)
    assert_well_formed(d, (64, 48))
    assert d.source_format == "tga"
    assert d.alpha is None
    np.testing.assert_array_equal(d.rgb, pixels)


@pytest.mark.parametrize("rle", [False, True])
def test_tga_keeps_straight_alpha(rle: bool) -> None:
    pixels = smooth_rgba()
    d = decode(save(Image.fromarray(pixels), "TGA", compression="tga_rle" if rle else None))
    assert_well_formed(d)
    np.testing.assert_array_equal(d.rgb, pixels[..., :3])
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, pixels[..., 3])


def test_tga_grey_and_palette() -> None:
    grey = smooth_rgb()[..., 0]
    d = decode(save(Image.fromarray(grey), "TGA"))
    np.testing.assert_array_equal(d.rgb, np.dstack([grey] * 3))
    palette = Image.fromarray(smooth_rgb()).quantize(16)
    d = decode(save(palette, "TGA"))
    np.testing.assert_array_equal(d.rgb, np.asarray(palette.convert("RGB")))


def test_tga_without_attribute_bits_has_no_alpha() -> None:
    pixels = smooth_rgba()
    pixels[..., 3] = 0  # padding bytes, as writers that declare no alpha leave them
    data = bytearray(save(Image.fromarray(pixels), "TGA"))
    data[17] &= 0xF0  # the descriptor now says: no alpha bits
    d = decode(bytes(data))
    assert d.alpha is None
    np.testing.assert_array_equal(d.rgb, pixels[..., :3])


def test_tga_pixel_limit_is_checked_before_decoding() -> None:
    header = tga_header(width=8000, height=8000)
    with pytest.raises(ImageTooLarge, match="8000x8000"):
        decode(header + bytes(64))


@pytest.mark.parametrize("rle", [False, True])
def test_truncated_tga_is_corrupt(rle: bool) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = save(Image.fromarray(noise), "TGA", compression="tga_rle" if rle else None)
    with pytest.raises(CorruptImage):
        decode(data[: len(data) // 2])


# ---------------------------------------------------------------- PSD by hand

GREY, INDEXED, RGB, CMYK, LAB = 1, 2, 3, 4, 9


def psd_plane_bytes(plane: np.ndarray, depth: int) -> np.ndarray:
    """One channel as its rows of big-endian bytes (H x row bytes)."""
    if depth == 1:
        return np.packbits(plane.astype(bool), axis=1)
    dtype = {8: ">u1", 16: ">u2", 32: ">f4"}[depth]
    rows = np.ascontiguousarray(plane.astype(dtype))
    return rows.view(np.uint8).reshape(plane.shape[0], -1)


def psd_image_data(planes: list[np.ndarray], depth: int, compression: int, psb: bool) -> bytes:
    rows = [psd_plane_bytes(p, depth) for p in planes]
    if compression == 0:
        return struct.pack(">H", 0) + b"".join(r.tobytes() for r in rows)
    if compression == 1:
        coded = [packbits(r) for r in rows]
        counts = b"".join(c.astype(">u4" if psb else ">u2").tobytes() for c, _ in coded)
        return struct.pack(">H", 1) + counts + b"".join(d for _, d in coded)
    if compression == 3:
        # Prediction: each sample stored as its difference to the one on its left.
        deltas = []
        for p in planes:
            wide = p.astype(np.int64)
            diff = np.diff(wide, axis=1, prepend=0) % (256 if depth == 8 else 65536)
            deltas.append(psd_plane_bytes(diff, depth))
        rows = deltas
    return struct.pack(">H", compression) + zlib.compress(b"".join(r.tobytes() for r in rows))


def psd_resource(rid: int, data: bytes) -> bytes:
    data += b"\0" * (len(data) % 2)
    return b"8BIM" + struct.pack(">H", rid) + b"\0\0" + struct.pack(">I", len(data)) + data


def make_psd(
    planes: list[np.ndarray],
    mode: int,
    *,
    depth: int = 8,
    psb: bool = False,
    compression: int = 0,
    layer_count: int | None = None,
    tagged: bytes = b"",
    resources: bytes = b"",
    colour_data: bytes = b"",
    size: tuple[int, int] | None = None,
) -> bytes:
    """A PSD (or PSB) per Adobe's specification, with a merged image and no layer records."""
    height, width = planes[0].shape if size is None else size[::-1]
    header = b"8BPS" + struct.pack(
        ">H6xHIIHH", 2 if psb else 1, len(planes), height, width, depth, mode
    )
    length = ">Q" if psb else ">I"
    if layer_count is None and not tagged:
        layers = b""
    else:
        info = b"" if layer_count is None else struct.pack(">h", layer_count) + b"\0\0"
        layers = struct.pack(length, len(info)) + info + struct.pack(">I", 0) + tagged
    return b"".join(
        [
            header,
            struct.pack(">I", len(colour_data)) + colour_data,
            struct.pack(">I", len(resources)) + resources,
            struct.pack(length, len(layers)) + layers,
            psd_image_data(planes, depth, compression, psb),
        ]
    )


def rgb_planes(pixels: np.ndarray) -> list[np.ndarray]:
    return [pixels[..., c] for c in range(pixels.shape[2])]


@pytest.mark.parametrize("compression", [0, 1, 2, 3])
def test_psd_8bit_rgb_matches_pillow(compression: int) -> None:
    pixels = smooth_rgb()
    data = make_psd(rgb_planes(pixels), RGB, compression=compression)
    d = decode(data)
    assert_well_formed(d, (64, 48))
    assert d.source_format == "psd"
    assert d.alpha is None
    np.testing.assert_array_equal(d.rgb, pixels)
    if compression in (0, 1):  # Pillow reads only these
        np.testing.assert_array_equal(d.rgb, pillow_rgb(data))


@pytest.mark.parametrize("compression", [0, 1, 2, 3])
@pytest.mark.parametrize("psb", [False, True])
def test_psd_16bit_rgb_with_alpha(compression: int, psb: bool) -> None:
    pixels8 = smooth_rgba()
    pixels16 = pixels8.astype(np.uint16) * 257  # 8-bit values exactly, at 16 bits
    data = make_psd(rgb_planes(pixels16), RGB, depth=16, compression=compression, psb=psb)
    d = decode(data)
    assert d.source_format == ("psb" if psb else "psd")
    np.testing.assert_array_equal(d.rgb, pixels8[..., :3])
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, pixels8[..., 3])


def test_psd_16bit_grey_rounds_to_nearest() -> None:
    grey = np.array([[0, 128, 32767, 32896, 65535, 65278]], np.uint16)
    d = decode(make_psd([grey], GREY, depth=16))
    assert d.rgb[0, :, 0].tolist() == [0, 0, 127, 128, 255, 254]


def test_psd_32bit_is_linear_light() -> None:
    linear = np.array([[0.0, 0.18, 1.0, 4.0]], np.float32)
    d = decode(make_psd([linear, linear, linear], RGB, depth=32))
    assert d.rgb[0, :, 0].tolist() == [0, MID_GREY_SRGB, 255, 255]
    grey_alpha = decode(
        make_psd([linear, np.array([[0.0, 0.5, 1.0, 1.0]], np.float32)], GREY, depth=32)
    )
    assert grey_alpha.alpha is not None
    assert grey_alpha.alpha[0].tolist() == [0, 128, 255, 255]


def test_psd_cmyk_with_alpha_matches_pillow() -> None:
    rng = np.random.default_rng(4)
    ink = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    alpha = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    stored = [255 - ink[..., c] for c in range(4)]  # PSD stores ink inverted
    d = decode(make_psd([*stored, alpha], CMYK))
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, alpha)
    expected = np.asarray(Image.frombytes("CMYK", (10, 12), ink.tobytes()).convert("RGB"))
    np.testing.assert_array_equal(d.rgb, expected)
    # Pillow's own PSD reader agrees on the colour (it drops the alpha).
    np.testing.assert_array_equal(d.rgb, pillow_rgb(make_psd(stored, CMYK)))


def test_psd_cmyk_no_ink_is_white() -> None:
    d = decode(make_psd([np.full((2, 2), 255, np.uint8)] * 4, CMYK))
    assert d.rgb[0, 0].tolist() == [255, 255, 255]


def test_psd_grey_with_alpha() -> None:
    grey = smooth_rgb()[..., 0]
    alpha = smooth_rgba()[..., 3]
    d = decode(make_psd([grey, alpha], GREY))
    np.testing.assert_array_equal(d.rgb, np.dstack([grey] * 3))
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, alpha)


def test_psd_indexed_with_transparent_index() -> None:
    table = np.zeros((3, 256), np.uint8)
    table[:, 1] = (255, 0, 0)
    table[:, 2] = (0, 0, 255)
    index = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    data = make_psd(
        [index],
        INDEXED,
        colour_data=table.tobytes(),
        resources=psd_resource(1047, struct.pack(">H", 0)),
    )
    d = decode(data)
    assert d.rgb[0].tolist() == [[0, 0, 0], [255, 0, 0], [0, 0, 255]]
    assert d.alpha is not None
    assert d.alpha.tolist() == [[0, 255, 255], [255, 255, 0]]


def test_psd_bitmap_set_bits_are_black() -> None:
    bits = np.array([[1, 0, 1, 0, 0, 0, 0, 0, 1, 1]], np.uint8)
    d = decode(make_psd([bits], 0, depth=1))
    assert d.rgb[0, :, 0].tolist() == [0, 255, 0, 255, 255, 255, 255, 255, 0, 0]


def test_psd_lab_converts_to_srgb() -> None:
    # CIE Lab of sRGB red (L 53.24, a 80.09, b 67.20), then white, in Photoshop's 8-bit coding.
    lightness = np.array([[round(53.24 * 255 / 100), 255]], np.uint8)
    a = np.array([[128 + 80, 128]], np.uint8)
    b = np.array([[128 + 67, 128]], np.uint8)
    d = decode(make_psd([lightness, a, b], LAB))
    red, white = d.rgb[0].astype(int)
    assert red[0] > 235 and red[1] < 30 and red[2] < 30
    assert white.min() >= 250


def test_psd_icc_profile_is_applied() -> None:
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    data = make_psd(rgb_planes(red), RGB, resources=psd_resource(1039, swapped_primaries_profile()))
    d = decode(data)
    assert d.icc_profile is not None
    r, g, b = d.rgb[0, 0].astype(int)
    assert g > 200 and r < 60 and b < 60  # the profile's red is sRGB's green


def test_psd_extra_channel_with_layers_is_not_transparency() -> None:
    pixels = smooth_rgba()
    with_layers = make_psd(rgb_planes(pixels), RGB, layer_count=1)
    assert decode(with_layers).alpha is None
    # A flat Photoshop file names its saved selections (alpha identifiers, resource 1053).
    saved = make_psd(rgb_planes(pixels), RGB, resources=psd_resource(1053, struct.pack(">I", 7)))
    assert decode(saved).alpha is None


def test_psd_merged_transparency_block_means_alpha_over_white() -> None:
    colour = np.full((1, 3, 3), 200, np.uint8)
    alpha = np.array([[255, 128, 0]], np.uint8)
    a = alpha[..., None].astype(np.float64) / 255
    stored = np.rint(colour * a + 255 * (1 - a)).astype(np.uint8)  # composited over white
    block = b"8BIMMt16" + struct.pack(">I", 0)
    d = decode(make_psd([*rgb_planes(stored), alpha], RGB, depth=8, tagged=block))
    assert d.alpha is not None
    assert d.alpha.tolist() == [[255, 128, 0]]
    assert max_diff(d.rgb[0, :2], colour[0, :2]) <= 1


def test_psd_from_cleancut_writer_round_trips() -> None:
    rgb = smooth_rgb()
    alpha = smooth_rgba()[..., 3]
    d = decode(write_psd(rgb, alpha, icc_profile=None))
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, alpha)
    # The merged image was stored over white in 8 bits: undoing that loses precision
    # as alpha shrinks, so compare where the pixel is mostly opaque.
    solid = alpha >= 128
    assert max_diff(d.rgb[solid], rgb[solid]) <= 2


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "1"])
def test_psd_from_psd_tools(mode: str) -> None:
    source = Image.fromarray(smooth_rgba()).convert(mode)
    import psd_tools

    buf = io.BytesIO()
    psd_tools.PSDImage.frompil(source).save(buf)
    d = decode(buf.getvalue())
    expected = source.convert("RGBA")
    np.testing.assert_array_equal(d.rgb, np.asarray(expected.convert("RGB")))
    if mode in ("RGBA", "LA"):
        assert d.alpha is not None
        np.testing.assert_array_equal(d.alpha, np.asarray(expected)[..., 3])
    else:
        assert d.alpha is None


@pytest.mark.parametrize(("psb", "size"), [(False, (30_000, 30_000)), (True, (100_000, 100_000))])
def test_psd_pixel_limit_is_checked_before_decoding(psb: bool, size: tuple[int, int]) -> None:
    data = make_psd([np.zeros((1, 1), np.uint8)] * 3, RGB, psb=psb, size=size)
    with pytest.raises(ImageTooLarge, match=f"{size[0]}x{size[1]}"):
        decode(data)


@pytest.mark.parametrize("compression", [0, 1, 2])
def test_truncated_psd_is_corrupt(compression: int) -> None:
    noise = np.random.default_rng(6).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    data = make_psd(rgb_planes(noise), RGB, compression=compression)
    for cut in (20, 30, len(data) // 2, len(data) - 5):
        with pytest.raises(CorruptImage):
            decode(data[:cut])


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({4: b"\x00\x03"}, CorruptImage),  # version 3
        ({12: b"\x00\x00"}, CorruptImage),  # no channels
        ({24: b"\x00\x05"}, CorruptImage),  # colour mode 5 does not exist
        ({24: b"\x00\x07"}, UnsupportedFormat),  # multichannel
        ({22: b"\x00\x20", 24: b"\x00\x04"}, UnsupportedFormat),  # 32-bit CMYK
        ({14: b"\x00\x00\x9c\x40"}, CorruptImage),  # 40000 rows: over PSD's 30000
        ({-1 - 16 * 16 * 3 - 1: b"\x00\x09"}, CorruptImage),  # compression 9
    ],
)
def test_broken_psd_headers(patch: dict[int, bytes], error: type[Exception]) -> None:
    data = bytearray(make_psd(rgb_planes(np.zeros((16, 16, 3), np.uint8)), RGB))
    for offset, value in patch.items():
        start = offset % len(data)
        data[start : start + len(value)] = value
    with pytest.raises(error):
        decode(bytes(data))


# ---------------------------------------------------------------- EXR


def write_exr(tmp_path: Path, channels: dict[str, np.ndarray], **header: object) -> bytes:
    exr = openexr()
    path = tmp_path / "image.exr"
    full = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage} | header
    exr.File(full, channels).write(str(path))
    return path.read_bytes()


def rgb_channels(linear: np.ndarray, dtype: type = np.float32) -> dict[str, np.ndarray]:
    return {c: np.ascontiguousarray(linear[..., i].astype(dtype)) for i, c in enumerate("RGB")}


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_exr_is_tone_mapped(tmp_path: Path, dtype: type) -> None:
    d = decode(write_exr(tmp_path, rgb_channels(patches_linear(), dtype)))
    assert_well_formed(d, (64, 16))
    assert d.source_format == "exr"
    assert d.alpha is None
    assert_patches_tone_mapped(d.rgb)


@pytest.mark.parametrize("level", [0.18, 0.002, 40.0])
def test_exr_uniform_grey_maps_to_mid_grey_at_any_exposure(tmp_path: Path, level: float) -> None:
    grey = np.full((8, 8, 3), level, np.float32)
    d = decode(write_exr(tmp_path, rgb_channels(grey)))
    assert np.abs(d.rgb.astype(int) - MID_GREY_SRGB).max() <= 1


def test_exr_alpha_is_kept_and_colour_unpremultiplied(tmp_path: Path) -> None:
    straight = patches_linear()
    alpha = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (16, 1))
    alpha[:, 16:32] = 1.0  # keep the grey patch fully opaque
    channels = rgb_channels(straight * alpha[..., None]) | {"A": alpha}
    d = decode(write_exr(tmp_path, channels))
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, np.rint(alpha * 255).astype(np.uint8))
    opaque = decode(write_exr(tmp_path, rgb_channels(straight)))
    visible = alpha > 0.1
    assert max_diff(d.rgb[visible], opaque.rgb[visible]) <= 2


def test_exr_luminance_only_and_layered_channels(tmp_path: Path) -> None:
    ramp = np.tile(np.geomspace(0.01, 10.0, 32, dtype=np.float32), (4, 1))
    grey = decode(write_exr(tmp_path, {"Y": ramp}))
    assert (grey.rgb[..., 0] == grey.rgb[..., 1]).all()
    assert (np.diff(grey.rgb[0, :, 0].astype(int)) >= 0).all()
    layered = {f"beauty.{c}": p for c, p in rgb_channels(patches_linear()).items()}
    assert_patches_tone_mapped(decode(write_exr(tmp_path, layered)).rgb)


def test_exr_other_primaries_are_converted(tmp_path: Path) -> None:
    ap0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)  # ACES 2065-1
    img = np.zeros((4, 8, 3), np.float32)
    img[:, :4] = 0.18  # neutral in any RGB space with its own white
    img[:, 4:] = (0.4, 0.1, 0.05)
    plain = decode(write_exr(tmp_path, rgb_channels(img)))
    aces = decode(write_exr(tmp_path, rgb_channels(img), chromaticities=ap0))
    assert chroma(aces.rgb[0, 0]) <= 2
    # AP0's wide primaries make the same numbers a more saturated colour.
    assert chroma(aces.rgb[0, 6]) > chroma(plain.rgb[0, 6]) + 10


def test_exr_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    data = write_exr(tmp_path, rgb_channels(np.zeros((4, 4, 3), np.float32)))
    at = data.index(b"dataWindow\x00box2i\x00") + len(b"dataWindow\x00box2i\x00") + 4
    huge = data[:at] + struct.pack("<4i", 0, 0, 99_999, 99_999) + data[at + 16 :]
    with pytest.raises(ImageTooLarge, match="100000x100000"):
        decode(huge)


def test_exr_channel_count_is_limited(tmp_path: Path) -> None:
    many = {f"c{i:02}": np.zeros((10, 10), np.float32) for i in range(20)}
    data = write_exr(tmp_path, many | rgb_channels(np.zeros((10, 10, 3), np.float32)))
    with pytest.raises(ImageTooLarge, match="channel"):
        decode(data, max_pixels=100)
    assert decode(data, max_pixels=1000).size == (10, 10)


def test_exr_without_colour_channels_is_unsupported(tmp_path: Path) -> None:
    data = write_exr(tmp_path, {"Z": np.ones((4, 4), np.float32), "N": np.ones((4, 4), np.float32)})
    with pytest.raises(UnsupportedFormat, match="N, Z"):
        decode(data)


@pytest.mark.parametrize("compression", ["NO_COMPRESSION", "ZIP_COMPRESSION", "PIZ_COMPRESSION"])
def test_truncated_exr_is_corrupt(tmp_path: Path, compression: str) -> None:
    noise = np.random.default_rng(7).random((64, 64, 3), dtype=np.float32)
    data = write_exr(tmp_path, rgb_channels(noise), compression=getattr(openexr(), compression))
    for cut in (8, 100, len(data) // 2, len(data) - 10):
        with pytest.raises(CorruptImage):
            decode(data[:cut])
    with pytest.raises(CorruptImage):
        decode(b"\x76\x2f\x31\x01" + bytes(200))


# ---------------------------------------------------------------- Radiance HDR


def write_hdr(tmp_path: Path, linear_rgb: np.ndarray, *, rle: bool = True) -> bytes:
    path = tmp_path / "image.hdr"
    mode = cv2.IMWRITE_HDR_COMPRESSION_RLE if rle else cv2.IMWRITE_HDR_COMPRESSION_NONE
    assert cv2.imwrite(str(path), linear_rgb[..., ::-1], [cv2.IMWRITE_HDR_COMPRESSION, mode])
    return path.read_bytes()


def rgbe(rgb: tuple[float, float, float]) -> bytes:
    """One flat RGBE pixel, per Greg Ward's definition of the format."""
    peak = max(rgb)
    if peak < 1e-32:
        return bytes(4)
    mantissa, exponent = np.frexp(peak)
    factor = mantissa * 256.0 / peak
    return bytes([int(c * factor) for c in rgb] + [int(exponent) + 128])


def radiance(
    pixels: list[list[tuple[float, float, float]]],
    resolution: bytes,
    fmt: bytes = b"32-bit_rle_rgbe",
) -> bytes:
    body = b"".join(rgbe(p) for row in pixels for p in row)
    return b"#?RADIANCE\nFORMAT=" + fmt + b"\nEXPOSURE=1.0\n\n" + resolution + b"\n" + body


@pytest.mark.parametrize("rle", [True, False])
def test_hdr_is_tone_mapped(tmp_path: Path, rle: bool) -> None:
    d = decode(write_hdr(tmp_path, patches_linear(), rle=rle))
    assert_well_formed(d, (64, 16))
    assert d.source_format == "hdr"
    assert d.alpha is None
    assert_patches_tone_mapped(d.rgb)


def test_hdr_uniform_grey_maps_to_mid_grey(tmp_path: Path) -> None:
    d = decode(write_hdr(tmp_path, np.full((8, 8, 3), 7.5, np.float32)))
    assert np.abs(d.rgb.astype(int) - MID_GREY_SRGB).max() <= 1


def test_hdr_channels_are_in_file_order() -> None:
    data = radiance([[(1.0, 0.5, 0.25), (0.25, 0.5, 1.0)]], b"-Y 1 +X 2")
    (r1, g1, b1), (r2, g2, b2) = decode(data).rgb[0].astype(int)
    assert r1 > g1 > b1
    assert b2 > g2 > r2


SEEN = np.arange(6).reshape(2, 3)  # the image as displayed: 2 rows of 3 colours
SIX_COLOURS = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0), (0.0, 1.0, 1.0)]
SIX_COLOURS.append((1.0, 0.0, 1.0))


@pytest.mark.parametrize(
    ("resolution", "stored"),
    [
        (b"+Y 2 +X 3", SEEN[::-1]),  # bottom row first
        (b"-Y 2 -X 3", SEEN[:, ::-1]),  # each row right to left
        (b"+Y 2 -X 3", SEEN[::-1, ::-1]),
        (b"+X 3 -Y 2", SEEN.T),  # column by column, each top to bottom
        (b"-X 3 +Y 2", SEEN.T[::-1, ::-1]),
    ],
)
def test_hdr_orientations(resolution: bytes, stored: np.ndarray) -> None:
    def pixels(indices: np.ndarray) -> list[list[tuple[float, float, float]]]:
        return [[SIX_COLOURS[int(i)] for i in row] for row in indices]

    standard = decode(radiance(pixels(SEEN), b"-Y 2 +X 3")).rgb
    oriented = decode(radiance(pixels(stored), resolution))
    np.testing.assert_array_equal(oriented.rgb, standard)


def test_hdr_xyze_is_converted() -> None:
    d65_white = (0.9505, 1.0, 1.089)
    data = radiance([[d65_white, (0.4124, 0.2126, 0.0193)]], b"-Y 1 +X 2", b"32-bit_rle_xyze")
    white, red = decode(data).rgb[0].astype(int)
    assert white.max() - white.min() <= 2
    assert red[0] > red[1] + 60 and red[0] > red[2] + 60


def test_hdr_pixel_limit_is_checked_before_decoding() -> None:
    data = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n" + bytes(16)
    with pytest.raises(ImageTooLarge, match="100000x100000"):
        decode(data)


@pytest.mark.parametrize("rle", [True, False])
def test_truncated_hdr_is_corrupt(tmp_path: Path, rle: bool) -> None:
    noise = np.random.default_rng(8).random((32, 40, 3), dtype=np.float32) * 4
    data = write_hdr(tmp_path, noise, rle=rle)
    for cut in (12, len(data) // 2, len(data) - 3):
        with pytest.raises(CorruptImage):
            decode(data[:cut])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n" + b"X" * 70_000, CorruptImage),
        (b"#?RADIANCE\n\n-Y two +X 3\n" + bytes(24), CorruptImage),
        (b"#?RADIANCE\n\n-Y 2 -Y 3\n" + bytes(24), CorruptImage),
        (b"#?RADIANCE\nFORMAT=48-bit_spectral\n\n-Y 1 +X 1\n" + bytes(4), UnsupportedFormat),
    ],
)
def test_broken_hdr_headers(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(data)


# ---------------------------------------------------------------- camera RAW (DNG)

# XYZ (D65) to linear sRGB: as the DNG's ColorMatrix1 it makes the "camera" sRGB itself.
XYZ_TO_SRGB = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]


def srational(values: list[float], denominator: int = 10_000) -> list[int]:
    return [v for x in values for v in (round(x * denominator), denominator)]


def quadrants16() -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right grey (16-bit linear)."""
    img = np.empty((64, 96, 3), np.uint16)
    img[:32, :48] = (40000, 4000, 4000)
    img[:32, 48:] = (4000, 40000, 4000)
    img[32:, :48] = (4000, 4000, 40000)
    img[32:, 48:] = (12000, 12000, 12000)
    return img


def write_dng(
    rgb16: np.ndarray,
    *,
    cfa: bool = True,
    orientation: int = 1,
    dng: bool = True,
    make: str = "Cleancut",
) -> bytes:
    """A minimal DNG 1.4 (CFA Bayer RGGB, or LinearRaw) with the tags LibRaw needs."""
    tags = [
        (50708, "s", 0, "cleancut test camera", True),  # UniqueCameraModel
        (50721, "2i", 9, srational(XYZ_TO_SRGB), True),  # ColorMatrix1
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral: no white balance
        (50717, "I", 1, 65535, True),  # WhiteLevel
        (271, "s", 0, make, True),
        (272, "s", 0, "Test", True),
        (274, "H", 1, orientation, True),
    ]
    if dng:
        tags += [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True)]
    buf = io.BytesIO()
    if cfa:
        mosaic = np.empty(rgb16.shape[:2], np.uint16)
        mosaic[0::2, 0::2] = rgb16[0::2, 0::2, 0]
        mosaic[0::2, 1::2] = rgb16[0::2, 1::2, 1]
        mosaic[1::2, 0::2] = rgb16[1::2, 0::2, 1]
        mosaic[1::2, 1::2] = rgb16[1::2, 1::2, 2]
        tags += [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)]
        tifffile().imwrite(buf, mosaic, photometric=32803, extratags=tags)
    else:
        tifffile().imwrite(buf, rgb16, photometric=34892, planarconfig="contig", extratags=tags)
    return buf.getvalue()


def patch_ifd0(data: bytes, tag: int, value: int) -> bytes:
    out = bytearray(data)
    (ifd,) = struct.unpack_from("<I", out, 4)
    (count,) = struct.unpack_from("<H", out, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        found, typ = struct.unpack_from("<HH", out, entry)
        if found == tag:
            struct.pack_into("<H" if typ == 3 else "<I", out, entry + 8, value)
            return bytes(out)
    raise KeyError(tag)


def quadrant_colours(rgb: np.ndarray) -> list[list[int]]:
    h, w = rgb.shape[:2]
    return [
        rgb[y, x].astype(int).tolist()
        for y, x in (
            (h // 4, w // 4),
            (h // 4, 3 * w // 4),
            (3 * h // 4, w // 4),
            (3 * h // 4, 3 * w // 4),
        )
    ]


def dominant(colour: list[int]) -> str:
    r, g, b = colour
    if max(r, g, b) - min(r, g, b) < 12:
        return "grey"
    return "rgb"[int(np.argmax(colour))]


@pytest.mark.parametrize("cfa", [True, False])
def test_dng_is_developed(cfa: bool) -> None:
    data = write_dng(quadrants16(), cfa=cfa)
    assert sniff_format(data) == "dng"
    assert sniff_format(data[:512]) == "dng"  # IFD0 sits in the head, as in camera files
    d = decode(data)
    assert_well_formed(d, (96, 64))
    assert d.source_format == "dng"
    assert d.alpha is None
    assert [dominant(c) for c in quadrant_colours(d.rgb)] == ["r", "g", "b", "grey"]
    red, _, _, grey = quadrant_colours(d.rgb)
    assert red[0] > 200 and grey[0] > 90


@pytest.mark.parametrize(
    ("orientation", "order"),
    [(6, ["b", "r", "grey", "g"]), (3, ["grey", "b", "g", "r"]), (8, ["g", "grey", "r", "b"])],
)
def test_dng_orientation_is_applied(orientation: int, order: list[str]) -> None:
    d = decode(write_dng(quadrants16(), orientation=orientation))
    assert d.size == ((64, 96) if orientation in (6, 8) else (96, 64))
    assert [dominant(c) for c in quadrant_colours(d.rgb)] == order


def test_tiff_based_raws_are_told_from_plain_tiff() -> None:
    assert sniff_format(save(Image.fromarray(smooth_rgb()), "TIFF")) == "tiff"
    assert sniff_format(write_dng(quadrants16(), dng=False, make="NIKON CORPORATION")) == "nef"
    assert sniff_format(write_dng(quadrants16(), dng=False, make="SONY")) == "arw"
    assert sniff_format(write_dng(quadrants16(), dng=False, make="Obscura")) == "camera-raw"


def test_raw_in_a_sub_ifd_behind_a_preview_is_found() -> None:
    # As NEF and DNG files do: IFD0 is a small RGB preview, the sensor data a SubIFD.
    buf = io.BytesIO()
    with tifffile().TiffWriter(buf) as tif:
        tif.write(
            smooth_rgb(16, 12),
            photometric="rgb",
            subifds=1,
            extratags=[(271, "s", 0, "NIKON CORPORATION", True)],
        )
        tif.write(np.zeros((64, 96), np.uint16), photometric=32803)
    assert sniff_format(buf.getvalue()) == "nef"


def test_tiff_ifd_loop_does_not_hang() -> None:
    # IFD0 at 8 with one entry, pointing back at itself as the next IFD.
    data = (
        b"II*\x00\x08\x00\x00\x00"
        + b"\x01\x00"
        + struct.pack("<HHII", 256, 4, 1, 4)
        + struct.pack("<I", 8)
    )
    assert sniff_format(data) == "tiff"


def test_dng_pixel_limit_is_checked_before_developing() -> None:
    data = write_dng(quadrants16())
    huge = patch_ifd0(patch_ifd0(data, 256, 20_000), 257, 20_000)
    # The sensor data behind the header is 96x64, so developing would fail as corrupt.
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        decode(huge)
    with pytest.raises(ImageTooLarge):
        decode(data, max_pixels=96 * 64 - 1)
    assert decode(data, max_pixels=96 * 64).size == (96, 64)


def test_truncated_dng_is_corrupt() -> None:
    data = write_dng(quadrants16(), cfa=False)
    for cut in (len(data) // 2, len(data) - 100):
        with pytest.raises(CorruptImage):
            decode(data[:cut])


@pytest.mark.parametrize(
    "head",
    [
        b"FUJIFILMCCD-RAW 0201FF383501",
        b"IIRO\x08\x00\x00\x00",
        b"IIU\x00\x18\x00\x00\x00",
        b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom",
    ],
)
def test_damaged_camera_raws_are_corrupt(head: bytes) -> None:
    with pytest.raises(CorruptImage):
        decode(head + bytes(4096))


# ---------------------------------------------------------------- damaged files, any format


def sample_file(fmt: str, tmp_path: Path) -> bytes:
    builders: dict[str, Callable[[], bytes]] = {
        "tga": lambda: save(Image.fromarray(smooth_rgba()), "TGA", compression="tga_rle"),
        "psd": lambda: write_psd(smooth_rgb(), smooth_rgba()[..., 3]),
        "psb": lambda: make_psd(
            rgb_planes(smooth_rgba().astype(np.uint16) * 257),
            RGB,
            depth=16,
            psb=True,
            compression=1,
        ),
        "exr": lambda: write_exr(
            tmp_path, rgb_channels(patches_linear()) | {"A": np.ones((16, 64), "f")}
        ),
        "hdr": lambda: write_hdr(tmp_path, patches_linear()),
        "dng": lambda: write_dng(quadrants16()),
    }
    return builders[fmt]()


@pytest.mark.parametrize("fmt", ["tga", "psd", "psb", "exr", "hdr", "dng"])
def test_damaged_files_fail_with_typed_errors(tmp_path: Path, fmt: str) -> None:
    """Random byte damage, mostly in the headers, either decodes or raises a CleancutError."""
    original = sample_file(fmt, tmp_path)
    rng = np.random.default_rng(sum(fmt.encode()))
    outcomes = set()
    for _ in range(120):
        data = bytearray(original)
        for _ in range(int(rng.integers(1, 6))):
            reach = 300 if rng.random() < 0.6 else len(data)
            data[int(rng.integers(0, min(reach, len(data))))] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            data = data[: int(rng.integers(1, len(data)))]
        try:
            decoded = decode(bytes(data), max_pixels=1_000_000)
        except (CorruptImage, UnsupportedFormat, ImageTooLarge, InvalidInput) as e:
            outcomes.add(type(e).__name__)
        else:
            assert_well_formed(decoded)
            outcomes.add("decoded")
    assert "CorruptImage" in outcomes


@pytest.mark.parametrize(
    ("module", "data", "needs"),
    [
        ("rawpy", b"FUJIFILMCCD-RAW " + bytes(64), "rawpy"),
        ("OpenEXR", b"\x76\x2f\x31\x01" + bytes(64), "OpenEXR"),
    ],
)
def test_missing_decoder_package_is_unsupported(
    monkeypatch: pytest.MonkeyPatch, module: str, data: bytes, needs: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(UnsupportedFormat, match=needs):
        decode(data)
