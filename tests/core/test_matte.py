from __future__ import annotations

import cv2
import numpy as np

from cleancut.core import matte


def test_upsample_is_smooth_and_bounded() -> None:
    # A hard diagonal edge at low resolution, upsampled 8x.
    yy, xx = np.mgrid[0:32, 0:32]
    small = (xx > yy).astype(np.float32)
    big = matte.upsample(small, (256, 256))
    assert big.shape == (256, 256) and big.dtype == np.float32
    assert big.min() >= 0.0 and big.max() <= 1.0
    # Along a row the edge ramps through intermediate values instead of one 0→1 step
    # (no nearest-neighbour stair-steps).
    row = big[128]
    assert np.count_nonzero((row > 0.05) & (row < 0.95)) >= 4
    assert np.all(np.diff(row[100:160]) >= -0.02)


def test_upsample_shrinks_with_area_and_keeps_identity() -> None:
    prob = np.random.default_rng(1).random((64, 64), dtype=np.float32)
    assert matte.upsample(prob, (64, 64)) is prob
    small = matte.upsample(prob, (16, 16))
    np.testing.assert_allclose(small[0, 0], prob[:4, :4].mean(), atol=1e-5)


def test_to_u8_rounds_and_binary_thresholds() -> None:
    alpha = matte.to_u8(np.array([[0.0, 0.499, 0.5, 1.0]], np.float32))
    assert alpha.tolist() == [[0, 127, 128, 255]]
    assert matte.binary(alpha, 0.5).tolist() == [[0, 0, 255, 255]]
    assert matte.binary(alpha, 0.0).tolist() == [[0, 255, 255, 255]]


def test_combine_keeps_source_transparency() -> None:
    model = np.array([[255, 255, 128, 0]], np.uint8)
    source = np.array([[255, 0, 255, 255]], np.uint8)
    assert matte.combine(model, source).tolist() == [[255, 0, 128, 0]]
    assert matte.combine(model, None) is model


def test_upsample_u8_matches_the_float_path_within_a_level() -> None:
    rng = np.random.default_rng(5)
    prob = cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (0, 0), 3)
    prob = (prob - prob.min()) / (prob.max() - prob.min())  # 0 and 1 both occur
    for size in ((250, 190), (64, 64), (40, 30)):
        want = matte.to_u8(matte.upsample(prob, size))
        got = matte.upsample_u8(prob, size)
        assert got.shape == (size[1], size[0]) and got.dtype == np.uint8
        assert np.abs(got.astype(int) - want).max() <= 1
        assert (got != want).mean() < 0.001
    # Bicubic overshoot below zero stays zero (not folded back up by an absolute value).
    step = np.zeros((16, 16), np.float32)
    step[:, 8:] = 1.0
    up = matte.upsample_u8(step, (160, 160))
    assert up[:, :70].max() == 0
    # ... and overshoot above one saturates at 255 instead of wrapping around.
    assert up[:, 90:].min() == 255
