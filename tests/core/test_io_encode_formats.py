"""The fast WebP and AVIF settings lose nothing visible on real photos cut out."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cleancut.core.io import decode, encode
from tests.conftest import require_shared


def cutouts() -> list[np.ndarray]:
    eval_dir = require_shared()
    out = []
    for name in ("people-removebg", "alphamatting"):
        path = sorted((eval_dir / name / "images").iterdir())[0]
        rgb = decode(path).rgb
        h, w = rgb.shape[:2]
        y, x = np.mgrid[0:h, 0:w]
        r = ((x - w / 2) / (w / 2.5)) ** 2 + ((y - h / 2) / (h / 2.5)) ** 2
        alpha = np.clip((1.2 - r) * 600, 0, 255).astype(np.uint8)
        rgba = np.dstack([rgb, alpha])
        rgba[alpha == 0, :3] = 0
        out.append(rgba)
    return out


def read_rgba(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGBA")).astype(np.int16)


def test_webp_lossless_is_exact_where_visible() -> None:
    for rgba in cutouts():
        out = read_rgba(encode(rgba, "webp"))
        np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
        visible = rgba[..., 3] > 0
        np.testing.assert_array_equal(out[..., :3][visible], rgba[..., :3][visible])


def test_webp_lossy_keeps_alpha_exact_and_colour_close() -> None:
    for rgba in cutouts():
        out = read_rgba(encode(rgba, "webp", lossless=False, quality=90))
        np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
        opaque = rgba[..., 3] == 255
        assert float(np.abs(out[..., :3] - rgba[..., :3])[opaque].mean()) < 3.0


def test_avif_keeps_alpha_and_colour_close() -> None:
    for rgba in cutouts():
        out = read_rgba(encode(rgba, "avif", quality=90))
        assert float(np.abs(out[..., 3] - rgba[..., 3]).mean()) < 1.0
        opaque = rgba[..., 3] == 255
        assert float(np.abs(out[..., :3] - rgba[..., :3])[opaque].mean()) < 3.0
