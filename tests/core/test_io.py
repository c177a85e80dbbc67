"""Decode and encode against images generated here, checking real pixel content."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from cleancut.core.io import (
    ENCODE_FORMATS,
    INPUT_FORMATS,
    decode,
    encode,
    flatten,
    sniff_format,
    srgb_icc_profile,
)
from cleancut.core.types import DecodedImage
from cleancut.errors import (
    CorruptImage,
    ImageTooLarge,
    InvalidInput,
    InvalidOptions,
    UnsupportedFormat,
)

# ---------------------------------------------------------------- helpers


def smooth_rgb(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth colour ramp: lossy codecs reproduce it closely, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    r = x * 255 // max(width - 1, 1)
    g = y * 255 // max(height - 1, 1)
    b = (x + y) * 255 // max(width + height - 2, 1)
    return np.dstack([r, g, b]).astype(np.uint8)


def smooth_rgba(width: int = 64, height: int = 48) -> np.ndarray:
    alpha = np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))
    return np.dstack([smooth_rgb(width, height), alpha])


def save(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def read_back(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def assert_well_formed(d: DecodedImage) -> None:
    assert d.rgb.dtype == np.uint8
    assert d.rgb.ndim == 3
    assert d.rgb.shape[2] == 3
    assert d.rgb.flags.c_contiguous
    if d.alpha is not None:
        assert d.alpha.dtype == np.uint8
        assert d.alpha.shape == d.rgb.shape[:2]
        assert d.alpha.flags.c_contiguous


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """Pillow cannot write 16-bit RGB PNG, so assemble one by hand."""
    height, width, _ = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * 6 // 2).view(np.uint8)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring ``width``x``height`` with almost no pixel data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def swapped_primaries_profile() -> bytes:
    """sRGB with its red and green primaries exchanged, and renamed so it is not
    mistaken for sRGB: pure red in this space is pure green in sRGB."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = int.from_bytes(data[128:132], "big")
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    data[red + 4 : red + 12], data[green + 4 : green + 12] = (
        data[green + 4 : green + 12],
        data[red + 4 : red + 12],
    )
    for encoding in ("utf-16-be", "ascii"):
        old, new = "sRGB".encode(encoding), "Swap".encode(encoding)
        data = bytearray(bytes(data).replace(old, new))
    return bytes(data)


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("fmt", "pil_format"),
    [
        ("jpeg", "JPEG"),
        ("png", "PNG"),
        ("webp", "WEBP"),
        ("tiff", "TIFF"),
        ("bmp", "BMP"),
        ("gif", "GIF"),
    ],
)
def test_sniff_format_recognises_pillow_output(fmt: str, pil_format: str) -> None:
    data = save(Image.new("RGB", (8, 8), (1, 2, 3)), pil_format)
    assert sniff_format(data[:64]) == fmt


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "avif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # an MP4 video
        (b"BM this is just text", None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_sniff_format_edge_cases(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected


def test_format_comes_from_content_not_file_name(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(save(Image.new("RGB", (5, 4), (9, 8, 7)), "PNG"))
    d = decode(path)
    assert d.source_format == "png"
    assert d.rgb[0, 0].tolist() == [9, 8, 7]


# ---------------------------------------------------------------- decode: formats


@pytest.mark.parametrize(
    ("pil_format", "params", "tolerance"),
    [
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("TIFF", {}, 0),
        ("BMP", {}, 0),
        ("JPEG", {"quality": 95}, 12),
        ("WEBP", {"quality": 90}, 16),
    ],
)
def test_decode_round_trips_rgb(pil_format: str, params: dict[str, object], tolerance: int) -> None:
    pixels = smooth_rgb()
    d = decode(save(Image.fromarray(pixels), pil_format, **params))
    assert_well_formed(d)
    assert d.source_format == pil_format.lower()
    assert d.size == (64, 48)
    assert d.alpha is None
    assert max_diff(d.rgb, pixels) <= tolerance


@pytest.mark.parametrize("pil_format", ["PNG", "TIFF"])
def test_decode_keeps_straight_alpha(pil_format: str) -> None:
    pixels = smooth_rgba()
    d = decode(save(Image.fromarray(pixels), pil_format))
    assert_well_formed(d)
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, pixels[..., 3])
    # Straight colour survives even where alpha is 0: nothing was premultiplied.
    np.testing.assert_array_equal(d.rgb, pixels[..., :3])


def test_decode_lossless_webp_with_alpha() -> None:
    pixels = smooth_rgba()
    d = decode(save(Image.fromarray(pixels), "WEBP", lossless=True, exact=True))
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, pixels[..., 3])
    np.testing.assert_array_equal(d.rgb, pixels[..., :3])


def test_decode_opaque_alpha_channel_is_kept() -> None:
    pixels = smooth_rgba()
    pixels[..., 3] = 255
    d = decode(save(Image.fromarray(pixels), "PNG"))
    assert d.alpha is not None
    assert int(d.alpha.min()) == 255


def test_decode_gif_takes_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    d = decode(data)
    assert d.source_format == "gif"
    assert d.size == (20, 10)
    assert d.rgb[5, 5].tolist() == [255, 0, 0]


def test_decode_heif() -> None:
    import pillow_heif

    pixels = smooth_rgb()
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(pixels)).save(buf, quality=95)
    d = decode(buf.getvalue())
    assert_well_formed(d)
    assert d.source_format == "heif"
    assert d.size == (64, 48)
    assert max_diff(d.rgb, pixels) <= 24
    assert float(np.abs(d.rgb.astype(float) - pixels).mean()) < 3


def test_decode_heif_orientation_is_applied_once() -> None:
    # libheif applies the rotation itself and pillow-heif resets the EXIF tag, so
    # our own EXIF step must not rotate a second time.
    import pillow_heif

    stored = np.zeros((32, 64, 3), dtype=np.uint8)
    stored[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(stored)).save(buf, quality=95, exif=exif.tobytes())
    d = decode(buf.getvalue())
    assert d.size == (32, 64)
    assert max_diff(d.rgb[4, 27], np.array([255, 0, 0])) <= 24
    assert max_diff(d.rgb[4, 4], np.array([0, 0, 0])) <= 24


def test_decode_avif_with_alpha() -> None:
    pixels = smooth_rgba()
    d = decode(save(Image.fromarray(pixels), "AVIF", quality=95))
    assert_well_formed(d)
    assert d.source_format == "avif"
    assert d.alpha is not None
    assert max_diff(d.alpha, pixels[..., 3]) <= 8
    opaque = pixels[..., 3] > 128
    assert float(np.abs(d.rgb.astype(float) - pixels[..., :3])[opaque].mean()) < 3


# ---------------------------------------------------------------- decode: modes and metadata


@pytest.mark.parametrize(("orientation", "red_corner"), [(6, "top-right"), (8, "bottom-left")])
def test_decode_applies_exif_orientation(orientation: int, red_corner: str) -> None:
    # Stored 64 wide x 32 high, with a red block in the stored top-left corner.
    stored = np.zeros((32, 64, 3), dtype=np.uint8)
    stored[...] = (0, 0, 255)
    stored[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    d = decode(save(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes()))
    assert d.size == (32, 64)
    corners = {
        "top-left": d.rgb[4, 4],
        "top-right": d.rgb[4, 27],
        "bottom-left": d.rgb[59, 4],
        "bottom-right": d.rgb[59, 27],
    }
    for name, pixel in corners.items():
        expected = [255, 0, 0] if name == red_corner else [0, 0, 255]
        assert max_diff(pixel, np.array(expected)) <= 10, name


def test_decode_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # full magenta + yellow = red
    d = decode(save(cmyk, "JPEG", quality=95))
    assert_well_formed(d)
    assert max_diff(d.rgb[16, 16], np.array([255, 0, 0])) <= 6


def test_decode_16bit_gray_scales_to_8bit() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    d = decode(save(img, "PNG"))
    expected = ((ramp.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(d.rgb[..., 0], expected)
    np.testing.assert_array_equal(d.rgb[..., 1], d.rgb[..., 2])
    # Scaled, not clipped: the top of the range is white and mid-range is mid-grey.
    assert d.rgb[0, -1, 0] == 255
    assert abs(int(d.rgb[0, 128, 0]) - 128) <= 1


def test_decode_16bit_rgb_png() -> None:
    ramp = np.linspace(0, 65535, 32).round().astype(np.uint16)
    pixels = np.dstack(np.broadcast_arrays(ramp[None, :], ramp[::-1][None, :], 1000))
    pixels = np.repeat(pixels, 3, axis=0)
    d = decode(png_16bit_rgb(pixels))
    expected = pixels.astype(np.float64) * 255 / 65535
    assert np.abs(d.rgb - expected).max() <= 1.0


def test_decode_grayscale() -> None:
    gray = smooth_rgb()[..., 0]
    d = decode(save(Image.fromarray(gray), "PNG"))
    assert d.alpha is None
    for channel in range(3):
        np.testing.assert_array_equal(d.rgb[..., channel], gray)


def test_decode_palette_with_transparency() -> None:
    indices = np.zeros((10, 12), dtype=np.uint8)
    indices[:, 6:] = 1
    img = Image.frombytes("P", (12, 10), indices.tobytes())
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * (254 * 3))
    d = decode(save(img, "PNG", transparency=0))
    assert d.alpha is not None
    assert (d.alpha[:, :6] == 0).all()
    assert (d.alpha[:, 6:] == 255).all()
    assert d.rgb[5, 9].tolist() == [10, 200, 30]


def test_decode_la() -> None:
    gray = np.full((8, 8), 90, dtype=np.uint8)
    alpha = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1))
    img = Image.merge("LA", [Image.fromarray(gray), Image.fromarray(alpha)])
    d = decode(save(img, "PNG"))
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, alpha)
    assert (d.rgb == 90).all()


def test_decode_srgb_profile_leaves_pixels_and_sets_icc() -> None:
    pixels = smooth_rgb()
    d = decode(save(Image.fromarray(pixels), "PNG", icc_profile=srgb_icc_profile()))
    np.testing.assert_array_equal(d.rgb, pixels)
    assert d.icc_profile == srgb_icc_profile()


def test_decode_converts_non_srgb_profile() -> None:
    img = Image.new("RGB", (8, 8), (255, 0, 0))
    d = decode(save(img, "PNG", icc_profile=swapped_primaries_profile()))
    assert max_diff(d.rgb[4, 4], np.array([0, 255, 0])) <= 3
    assert d.icc_profile == srgb_icc_profile()
    assert "sRGB" in ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(d.icc_profile))
    )


def test_decode_without_profile_has_no_icc() -> None:
    assert decode(save(Image.new("RGB", (4, 4)), "PNG")).icc_profile is None


def test_decode_ignores_a_garbage_profile() -> None:
    d = decode(save(Image.new("RGB", (4, 4), (5, 6, 7)), "PNG", icc_profile=b"not a profile"))
    assert d.rgb[0, 0].tolist() == [5, 6, 7]


# ---------------------------------------------------------------- decode: sources


def test_decode_every_source_type(tmp_path: Path) -> None:
    pixels = smooth_rgb(16, 12)
    data = save(Image.fromarray(pixels), "PNG")
    path = tmp_path / "image.png"
    path.write_bytes(data)
    with path.open("rb") as fh:
        from_file = decode(fh)
    sources: dict[str, object] = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "str path": str(path),
        "Path": path,
        "BytesIO": io.BytesIO(data),
        "PIL": Image.fromarray(pixels),
        "ndarray": pixels,
    }
    results = {name: decode(source) for name, source in sources.items()}  # type: ignore[arg-type]
    results["open file"] = from_file
    for name, d in results.items():
        assert_well_formed(d)
        np.testing.assert_array_equal(d.rgb, pixels, err_msg=name)
    assert results["bytes"].source_format == "png"
    assert results["ndarray"].source_format == "raw"


def test_decode_ndarray_gray_and_rgba() -> None:
    gray = smooth_rgb()[..., 1]
    d = decode(gray)
    assert d.alpha is None
    np.testing.assert_array_equal(d.rgb, np.dstack([gray] * 3))
    rgba = smooth_rgba()
    d = decode(rgba)
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, rgba[..., 3])
    np.testing.assert_array_equal(d.rgb, rgba[..., :3])
    assert d.rgb.flags.c_contiguous


def test_decode_ndarray_is_copied() -> None:
    pixels = smooth_rgb()
    d = decode(pixels)
    d.rgb[...] = 0
    assert pixels.any()


def test_decode_pil_image_applies_orientation_without_mutating() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    img = read_back(save(Image.new("RGB", (30, 10), (1, 2, 3)), "PNG", exif=exif.tobytes()))
    d = decode(img)
    assert d.size == (10, 30)
    assert img.size == (30, 10)
    assert d.source_format == "png"


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4), dtype=np.float32),
        np.zeros((4, 4, 5), dtype=np.uint8),
        np.zeros((4,), dtype=np.uint8),
        np.zeros((0, 4, 3), dtype=np.uint8),
    ],
)
def test_decode_rejects_bad_arrays(array: np.ndarray) -> None:
    with pytest.raises(InvalidInput):
        decode(array)


# ---------------------------------------------------------------- decode: limits and bad input


def test_pixel_limit_is_checked_before_decoding() -> None:
    # 8000x8000 is under Pillow's own bomb limit but over ours; the body is a few
    # bytes, so reaching a full decode would raise CorruptImage instead.
    with pytest.raises(ImageTooLarge, match=r"8000x8000.*50,000,000"):
        decode(png_header_only(8000, 8000))


def test_pixel_limit_is_configurable() -> None:
    data = save(Image.new("RGB", (100, 100)), "PNG")
    assert decode(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageTooLarge):
        decode(data, max_pixels=9_999)
    with pytest.raises(ImageTooLarge):
        decode(np.zeros((100, 100), dtype=np.uint8), max_pixels=9_999)
    with pytest.raises(ImageTooLarge):
        decode(Image.new("RGB", (100, 100)), max_pixels=9_999)


def test_decompression_bomb_is_rejected() -> None:
    with pytest.raises(ImageTooLarge):
        decode(png_header_only(100_000, 100_000))


def test_pillow_bomb_warning_raised_as_error_becomes_too_large() -> None:
    # ~100M pixels: Pillow warns (an error under this test suite's filters).
    with pytest.raises(ImageTooLarge):
        decode(png_header_only(10_000, 10_000), max_pixels=200_000_000)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_as_warning_still_hits_our_limit() -> None:
    with pytest.raises(ImageTooLarge, match="10000x10000"):
        decode(png_header_only(10_000, 10_000))


@pytest.mark.parametrize("pil_format", ["JPEG", "PNG", "WEBP", "TIFF", "GIF"])
def test_truncated_data_is_corrupt(pil_format: str) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = save(Image.fromarray(pixels), pil_format)
    with pytest.raises(CorruptImage):
        decode(data[: len(data) // 2])


def test_broken_header_is_corrupt() -> None:
    with pytest.raises(CorruptImage):
        decode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


def test_truncated_heif_is_corrupt() -> None:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(smooth_rgb())).save(buf, quality=80)
    with pytest.raises(CorruptImage):
        decode(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_unknown_content_is_unsupported() -> None:
    noise = np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(UnsupportedFormat, match="jpeg") as info:
        decode(b"\x01\x02" + noise)
    for fmt in INPUT_FORMATS:
        assert fmt in str(info.value)


@pytest.mark.parametrize("empty", [b"", bytearray(), io.BytesIO()])
def test_empty_input_is_invalid(empty: bytes | bytearray | io.BytesIO) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        decode(empty)


def test_missing_path_is_invalid(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(InvalidInput, match="no such file") as info:
        decode(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(InvalidInput, match="no such file"):
        decode(str(missing))


def test_directory_and_text_file_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        decode(tmp_path)
    (tmp_path / "a.txt").write_text("hello")
    with (tmp_path / "a.txt").open() as text, pytest.raises(InvalidInput, match="binary"):
        decode(text)  # type: ignore[arg-type]


def test_unsupported_source_type_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        decode(12345)  # type: ignore[arg-type]


# ---------------------------------------------------------------- encode


def test_encode_png_rgba_is_exact_and_has_no_exif() -> None:
    pixels = smooth_rgba()
    img = read_back(encode(pixels, "png"))
    assert img.format == "PNG"
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(img), pixels)
    assert len(img.getexif()) == 0
    assert "icc_profile" not in img.info


def test_encode_mask_is_8bit_gray_png() -> None:
    mask = smooth_rgb()[..., 0]
    img = read_back(encode(mask, "png"))
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), mask)


def test_encode_webp_lossless_is_exact_where_visible() -> None:
    pixels = smooth_rgba()
    img = read_back(encode(pixels, "webp"))
    assert img.format == "WEBP"
    out = np.asarray(img.convert("RGBA"))
    np.testing.assert_array_equal(out[..., 3], pixels[..., 3])
    visible = pixels[..., 3] > 0
    np.testing.assert_array_equal(out[..., :3][visible], pixels[..., :3][visible])


def test_encode_webp_lossy_keeps_alpha_and_is_close() -> None:
    pixels = smooth_rgba()
    pixels[..., 3] = np.where(np.arange(64) < 32, 0, 255)[None, :].astype(np.uint8)
    data = encode(pixels, "webp", lossless=False, quality=90)
    # Lossy WebP stores colour in a "VP8 " chunk, lossless in "VP8L".
    assert b"VP8 " in data
    assert b"VP8L" not in data
    assert b"VP8L" in encode(pixels, "webp")
    out = np.asarray(read_back(data).convert("RGBA"))
    assert max_diff(out[..., 3], pixels[..., 3]) <= 2
    opaque = pixels[..., 3] == 255
    assert float(np.abs(out[..., :3].astype(float) - pixels[..., :3])[opaque].mean()) < 4


def test_encode_jpeg_flattens_onto_background() -> None:
    pixels = np.zeros((32, 32, 4), dtype=np.uint8)
    pixels[..., :3] = (0, 0, 255)
    pixels[:, 16:, 3] = 255  # right half opaque blue, left half fully transparent
    img = read_back(encode(pixels, "jpeg", background=(255, 128, 0), quality=95))
    assert img.format == "JPEG"
    assert img.mode == "RGB"
    out = np.asarray(img)
    assert max_diff(out[16, 4], np.array([255, 128, 0])) <= 6
    assert max_diff(out[16, 28], np.array([0, 0, 255])) <= 6


def test_encode_jpeg_rgb_and_gray() -> None:
    pixels = smooth_rgb()
    assert max_diff(np.asarray(read_back(encode(pixels, "jpg", quality=95))), pixels) <= 12
    gray = read_back(encode(pixels[..., 0], "jpeg"))
    assert gray.mode == "L"


def test_flatten_is_straight_alpha_over() -> None:
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (2100, 7, 4), dtype=np.uint8)  # spans several bands
    background = (10, 250, 128)
    a = rgba[..., 3:4].astype(np.float64) / 255
    expected = np.rint(rgba[..., :3] * a + np.array(background) * (1 - a))
    assert np.abs(flatten(rgba, background) - expected).max() <= 0


def test_encode_avif_keeps_alpha() -> None:
    pixels = smooth_rgba()
    img = read_back(encode(pixels, "avif", quality=90))
    assert img.format == "AVIF"
    out = np.asarray(img.convert("RGBA"))
    assert max_diff(out[..., 3], pixels[..., 3]) <= 8
    opaque = pixels[..., 3] > 128
    assert float(np.abs(out[..., :3].astype(float) - pixels[..., :3])[opaque].mean()) < 4


def test_encode_tiff_rgba_is_exact_and_deflated() -> None:
    pixels = smooth_rgba()
    img = read_back(encode(pixels, "tiff"))
    assert img.format == "TIFF"
    assert img.info["compression"] == "tiff_adobe_deflate"
    np.testing.assert_array_equal(np.asarray(img), pixels)


@pytest.mark.parametrize("fmt", sorted(ENCODE_FORMATS))
def test_encode_embeds_icc_profile(fmt: str) -> None:
    img = read_back(encode(smooth_rgb(), fmt, icc_profile=srgb_icc_profile()))
    assert img.info.get("icc_profile") == srgb_icc_profile()


def test_decode_then_encode_carries_the_profile() -> None:
    source = save(Image.fromarray(smooth_rgb()), "JPEG", icc_profile=swapped_primaries_profile())
    d = decode(source)
    out = read_back(encode(d.rgb, "png", icc_profile=d.icc_profile))
    assert out.info["icc_profile"] == srgb_icc_profile()


def test_encode_unknown_format() -> None:
    with pytest.raises(UnsupportedFormat, match="png"):
        encode(smooth_rgb(), "gif")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"quality": 0}, InvalidOptions),
        ({"quality": 101}, InvalidOptions),
        ({"background": (0, 0, 256)}, InvalidOptions),
    ],
)
def test_encode_rejects_bad_options(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        encode(smooth_rgb(), "jpeg", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4, 2), dtype=np.uint8), np.zeros((4, 4), dtype=np.float32)],
)
def test_encode_rejects_bad_pixels(pixels: np.ndarray) -> None:
    with pytest.raises(InvalidInput):
        encode(pixels, "png")


def test_encode_webp_size_limit_is_clear() -> None:
    with pytest.raises(ImageTooLarge, match="16383"):
        encode(np.zeros((1, 16384, 3), dtype=np.uint8), "webp")


def test_closed_file_and_bad_limit_are_invalid() -> None:
    closed = io.BytesIO(b"data")
    closed.close()
    with pytest.raises(InvalidInput, match="file object"):
        decode(closed)
    with pytest.raises(InvalidOptions):
        decode(b"data", max_pixels=0)
