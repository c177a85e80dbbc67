"""The compiled guided-filter model against the numpy formulation it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from cleancut.core.guided_kernels import guided_coefficients_at
from cleancut.core.refine_ops import guided_coefficients, to_unit

RNG = np.random.default_rng(11)


@pytest.mark.parametrize(
    ("h", "w", "r"),
    [(1, 9, 1), (3, 40, 2), (37, 53, 1), (37, 53, 3), (70, 45, 4), (80, 33, 2)],
)
def test_matches_numpy_at_the_needed_pixels(h: int, w: int, r: int) -> None:
    # A smooth photo with an edge keeps the covariances away from eps alone, as in use.
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.dstack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) % 256])
    guide = np.clip(base + RNG.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
    src = np.where(xx + 0.5 * yy > w / 2, 255, 0).astype(np.uint8)
    need = RNG.random((h, w)) < 0.3
    eps = 1e-3

    got = guided_coefficients_at(guide, src, r, eps, need)
    want = guided_coefficients(to_unit(guide), to_unit(src), r, eps)

    assert got.shape == (h, w, 4) and got.dtype == np.float32
    assert not got[~need].any(), "pixels outside need stay zero"
    # Compare what the model is for: the filtered value it predicts at each pixel.
    unit = to_unit(guide)
    filtered = (got[..., :3] * unit).sum(-1) + got[..., 3]
    expect = (want[..., :3] * unit).sum(-1) + want[..., 3]
    np.testing.assert_allclose(filtered[need], expect[need], atol=5e-5)
    np.testing.assert_allclose(got[need], want[need], atol=2e-3, rtol=1e-3)


def test_no_needed_pixels_gives_zeros() -> None:
    guide = RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    src = RNG.integers(0, 256, (20, 20), dtype=np.uint8)
    out = guided_coefficients_at(guide, src, 2, 1e-3, np.zeros((20, 20), bool))
    assert out.shape == (20, 20, 4) and not out.any()


def test_mismatched_shapes_are_rejected() -> None:
    guide = np.zeros((10, 12, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        guided_coefficients_at(
            guide, np.zeros((10, 11), np.uint8), 1, 1e-3, np.ones((10, 12), bool)
        )
