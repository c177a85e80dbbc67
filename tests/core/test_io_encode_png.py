"""cleancut's own PNG writer: standard, byte-valid files with exactly the input pixels.

Every file is read back with Pillow (an independent decoder) and, for the stream itself,
with the standard library's zlib, which checks the Adler-32 that Pillow does not.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleancut.core.io import decode, encode, srgb_icc_profile
from cleancut.core.io_encode_png import (
    Deflate,
    adler32_combine,
    deflate_backends,
    encode_png,
)
from tests.conftest import require_shared

BACKENDS = deflate_backends()


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, checking each CRC on the way."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        yield kind, payload
        pos += 12 + length
    assert pos == len(data)


def check_png(data: bytes, pixels: np.ndarray) -> Image.Image:
    """Assert ``data`` is a well-formed PNG holding exactly ``pixels``."""
    parts = list(chunks(data))
    kinds = [k for k, _ in parts]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    idat = [i for i, k in enumerate(kinds) if k == b"IDAT"]
    assert idat == list(range(idat[0], idat[-1] + 1)), "IDAT chunks must be consecutive"
    stream = b"".join(p for k, p in parts if k == b"IDAT")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    raw = zlib.decompress(stream)  # raises on a bad Adler-32 or a broken stream
    assert len(raw) == pixels.shape[0] * (pixels.shape[1] * channels + 1)
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    assert img.mode == {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    np.testing.assert_array_equal(np.asarray(img), pixels)
    return img


def random_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])
@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 1, 3), (1, 1, 4), (1, 7, 4), (9, 1, 4), (5, 3), (13, 17, 3), (31, 33, 4)],
)
def test_tiny_and_odd_shapes_are_exact(backend: Deflate, shape: tuple[int, ...]) -> None:
    pixels = random_image(shape)
    check_png(encode_png(pixels, backend=backend), pixels)


@pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])
@pytest.mark.parametrize("threads", [1, 3])
def test_many_bands_make_one_valid_stream(backend: Deflate, threads: int) -> None:
    # Tiny bands force dozens of full-flush boundaries and Adler-32 combinations,
    # including a last band shorter than the others.
    pixels = random_image((203, 45, 4), seed=1)
    pixels[40:120, :, 3] = 0  # long runs as in a cut-out's transparent area
    pixels[40:120, :, :3] = 0
    data = encode_png(pixels, backend=backend, threads=threads, band_bytes=700)
    assert sum(1 for k, _ in chunks(data) if k == b"IDAT") > 20
    check_png(data, pixels)


def test_parallel_path_on_a_large_image() -> None:
    # Over the size where threads start, with the default band size.
    y, x = np.mgrid[0:1100, 0:1300]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256, (x * y) % 256], axis=-1).astype(np.uint8)
    check_png(encode_png(pixels, threads=2), pixels)


def test_non_contiguous_input() -> None:
    base = random_image((40, 60, 4), seed=2)
    view = base[::2, 5:50]
    check_png(encode_png(view), np.ascontiguousarray(view))
    gray = base[..., 3].T
    check_png(encode_png(gray), np.ascontiguousarray(gray))


def test_icc_profile_is_embedded() -> None:
    profile = srgb_icc_profile()
    pixels = random_image((8, 8, 3))
    img = check_png(encode_png(pixels, icc_profile=profile), pixels)
    assert img.info["icc_profile"] == profile
    kinds = [k for k, _ in chunks(encode_png(pixels, icc_profile=profile))]
    assert kinds.index(b"iCCP") < kinds.index(b"IDAT")


def test_encode_uses_the_fast_writer_and_matches_pillow() -> None:
    pixels = random_image((50, 70, 4), seed=4)
    fast = encode(pixels, "png")
    slow = encode(pixels, "png", png_writer="pillow")
    assert fast != slow  # different filters and deflate, the same pixels
    check_png(fast, pixels)
    check_png(slow, pixels)


def test_adler32_combine_matches_zlib() -> None:
    rng = np.random.default_rng(5)
    for size_a, size_b in [(0, 0), (0, 5), (5, 0), (1, 1), (1000, 70000), (65521, 65522)]:
        a = rng.integers(0, 256, size_a, dtype=np.uint8).tobytes()
        b = rng.integers(0, 256, size_b, dtype=np.uint8).tobytes()
        combined = adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
        assert combined == zlib.adler32(a + b)
    ones = b"\xff" * 200_000  # sums near their maximum
    assert adler32_combine(zlib.adler32(ones), zlib.adler32(ones), len(ones)) == zlib.adler32(
        ones + ones
    )


def test_standard_library_zlib_is_always_a_backend() -> None:
    assert BACKENDS[-1].name == "zlib"


def real_photos(count: int) -> list[Path]:
    eval_dir = require_shared()
    picked: list[Path] = []
    for name in ("people-removebg", "alphamatting", "davis16"):
        picked += sorted((eval_dir / name / "images").iterdir())[:count]
    return picked


def test_real_photos_round_trip_exactly() -> None:
    for path in real_photos(2):
        image = decode(path)
        rgb = image.rgb
        h, w = rgb.shape[:2]
        # A cut-out-like alpha: transparent outside an ellipse, soft at its edge.
        y, x = np.mgrid[0:h, 0:w]
        r = ((x - w / 2) / (w / 2.5)) ** 2 + ((y - h / 2) / (h / 2.5)) ** 2
        alpha = np.clip((1.2 - r) * 600, 0, 255).astype(np.uint8)
        rgba = np.dstack([rgb, alpha])
        rgba[alpha == 0, :3] = 0
        for pixels in (rgba, rgb, alpha):
            data = encode(pixels, "png", icc_profile=image.icc_profile)
            check_png(data, pixels)
            # A cut-out is never larger than Pillow's level-1 output by more than a fifth.
            pil = io.BytesIO()
            Image.fromarray(pixels).save(pil, "PNG", compress_level=1)
            assert len(data) < 1.2 * len(pil.getvalue()), path
