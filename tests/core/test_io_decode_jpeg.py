"""The fast path for plain JPEGs against Pillow, which decodes everything else."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from cleancut.core.io import decode
from cleancut.core.io_decode_jpeg import decode_plain_jpeg, orient
from cleancut.errors import CorruptImage
from tests.conftest import require_shared

RNG = np.random.default_rng(5)


def _jpeg(pixels: np.ndarray, **params: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90, **params)
    return buf.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def _header(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("orientation", range(10))
def test_orient_turns_pixels_as_pillow_does(orientation: int) -> None:
    pixels = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    img.getexif()[0x0112] = orientation
    want = np.asarray(ImageOps.exif_transpose(img))
    np.testing.assert_array_equal(orient(pixels, orientation), want)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_plain_jpeg_decodes_exactly_as_pillow(orientation: int) -> None:
    # Smooth content with a little noise: a realistic entropy-coded stream.
    yy, xx = np.mgrid[0:96, 0:160]
    base = np.dstack([xx * 255 // 159, yy * 255 // 95, (xx + yy) % 256])
    pixels = np.clip(base + RNG.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(pixels, exif=exif.tobytes())
    assert decode_plain_jpeg(data, _header(data)) is not None
    got = decode(data)
    np.testing.assert_array_equal(got.rgb, _pillow(data))
    assert got.alpha is None and got.icc_profile is None and got.source_format == "jpeg"
    assert got.rgb.flags.c_contiguous


def test_real_photos_decode_exactly_as_pillow() -> None:
    eval_dir = require_shared()
    photos = sorted((eval_dir / "people-removebg" / "images").glob("*.jpg"))[:3]
    photos += sorted((eval_dir / "davis16" / "images").glob("*.jpg"))[:2]
    assert photos
    for path in photos:
        data = path.read_bytes()
        assert decode_plain_jpeg(data, _header(data)) is not None, path
        np.testing.assert_array_equal(decode(data).rgb, _pillow(data), err_msg=str(path))


def test_jpegs_it_does_not_take_still_decode() -> None:
    pixels = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with_profile = _jpeg(pixels, icc_profile=icc)
    grey = _jpeg(pixels[..., 0])
    for data in (with_profile, grey):
        assert decode_plain_jpeg(data, _header(data)) is None
        assert decode(data).rgb.shape == (24, 32, 3)


def test_damaged_jpeg_goes_to_pillow_which_reports_it() -> None:
    data = _jpeg(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    cut = data[: len(data) // 2]
    assert decode_plain_jpeg(cut, _header(cut)) is None
    with pytest.raises(CorruptImage):
        decode(cut)


def test_without_simplejpeg_pillow_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    monkeypatch.setitem(sys.modules, "simplejpeg", None)
    assert decode_plain_jpeg(data, _header(data)) is None
    np.testing.assert_array_equal(decode(data).rgb, _pillow(data))
