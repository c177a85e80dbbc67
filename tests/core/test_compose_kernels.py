from __future__ import annotations

import numpy as np

from cleancut.core import compose_kernels


def test_cutout_interleaves_and_clears_transparent_colour() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    alpha = rng.choice(np.array([0, 1, 128, 255], np.uint8), (31, 47))
    out = compose_kernels.cutout(rgb, alpha)
    assert out.shape == (31, 47, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3], alpha)
    np.testing.assert_array_equal(out[..., :3], np.where(alpha[..., None] > 0, rgb, 0))
    # Views (a crop of a larger photo) work as well as whole arrays.
    crop = compose_kernels.cutout(rgb[5:20, 3:40], alpha[5:20, 3:40])
    np.testing.assert_array_equal(crop, out[5:20, 3:40])


def test_cutout_reads_strided_channels_across_strips() -> None:
    # Channel-reversed views (BGR read as RGB) are read through a contiguous copy, and a
    # photo taller than a strip is cut in several.
    rng = np.random.default_rng(4)
    bgr = rng.integers(0, 256, (300, 21, 3), dtype=np.uint8)
    alpha = rng.choice(np.array([0, 7, 255], np.uint8), (300, 21))
    out = compose_kernels.cutout(bgr[..., ::-1], alpha)
    np.testing.assert_array_equal(out[..., 3], alpha)
    np.testing.assert_array_equal(out[..., :3], np.where(alpha[..., None] > 0, bgr[..., ::-1], 0))
