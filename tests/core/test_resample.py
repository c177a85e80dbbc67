"""Separable resizing into the model's tensor: OpenCV's kernels, without its rounding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from cleancut.core import parallel, resample
from tests.conftest import require_shared


def _photo(size: tuple[int, int]) -> np.ndarray:
    with Image.open(require_shared() / "davis16" / "images" / "blackswan_00000.jpg") as im:
        return np.asarray(im.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def _hwc(tensor: np.ndarray) -> np.ndarray:
    return np.asarray(tensor[0].transpose(1, 2, 0))


@pytest.mark.parametrize(("src", "dst"), [(2668, 1024), (1024, 1024), (7, 3), (2048, 1024)])
def test_area_taps_weigh_what_each_source_pixel_covers(src: int, dst: int) -> None:
    idx, weight = resample.taps(src, dst, "area")
    assert idx.min() >= 0 and idx.max() <= src - 1
    np.testing.assert_allclose(weight.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    # every source pixel contributes, in all, the same share of the output
    per_source = np.bincount(idx.ravel(), weights=weight.ravel(), minlength=src)
    np.testing.assert_allclose(per_source, dst / src, rtol=0, atol=1e-5)
    if src == 2 * dst:
        assert np.all(weight[:, :2] == 0.5) and np.all(weight[:, 2:] == 0.0)


def test_area_cannot_enlarge() -> None:
    with pytest.raises(ValueError, match="shrinks"):
        resample.taps(100, 101, "area")


def test_lanczos_taps_are_normalised_and_exact_on_the_grid() -> None:
    idx, weight = resample.taps(866, 1024, "lanczos")
    assert idx.shape == weight.shape == (1024, 8)
    np.testing.assert_allclose(weight.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    same_idx, same = resample.taps(50, 50, "lanczos")
    # no scaling: each output is its own pixel, with no ringing from the others
    assert np.array_equal(same_idx[:, 3], np.arange(50)) and np.all(same[:, 3] == 1.0)
    assert np.all(np.delete(same, 3, axis=1) == 0.0)
    # edges are replicated, as OpenCV's resize does
    assert idx.min() == 0 and idx.max() == 865


@pytest.mark.parametrize(
    ("size", "kernels", "interp"),
    [
        ((866, 1154), ("lanczos", "lanczos"), cv2.INTER_LANCZOS4),
        ((70, 50), ("lanczos", "lanczos"), cv2.INTER_LANCZOS4),
        ((2668, 1499), ("area", "area"), cv2.INTER_AREA),
    ],
)
def test_a_real_photo_matches_opencvs_resize_within_a_level(
    size: tuple[int, int], kernels: tuple[resample.Kernel, resample.Kernel], interp: int
) -> None:
    rgb = _photo(size)
    got = _hwc(resample.to_planes(rgb, (1024, 1024), kernels, (0.0,) * 3, (1.0,) * 3))
    # OpenCV rounds its result to bytes (and Lanczos runs in fixed point): under a level
    want = cv2.resize(rgb, (1024, 1024), interpolation=interp).astype(np.float32)
    diff = np.abs(got - want)
    assert float(diff.max()) < 1.0 and 0.2 < float(diff.mean()) < 0.3
    # Lanczos overshoot is clipped as OpenCV's bytes are; area sums stay in range anyway
    assert got.min() >= 0.0 and got.max() <= 255.001
    if kernels[0] == "area":
        exact = cv2.resize(rgb.astype(np.float32), (1024, 1024), interpolation=cv2.INTER_AREA)
        # OpenCV places its cell boundaries in float: where one falls a hair from a pixel
        # edge (two of 1024 rows here) it gives that sliver to the neighbour, a tenth of a
        # level; everywhere else the sums agree.
        off = np.abs(got - exact) > 2e-3
        assert off.mean() < 0.005 and float(np.abs(got - exact).max()) < 0.25


def test_a_panorama_is_averaged_along_its_long_side_and_enlarged_along_the_short() -> None:
    rgb = _photo((3000, 900))
    got = _hwc(resample.to_planes(rgb, (1024, 1024), ("lanczos", "area"), (0.0,) * 3, (1.0,) * 3))
    narrow = cv2.resize(rgb.astype(np.float32), (1024, 900), interpolation=cv2.INTER_AREA)
    want = cv2.resize(narrow, (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    assert float(np.abs(got - np.clip(want, 0, 255)).max()) < 0.05


def test_normalises_each_channel_into_a_contiguous_planar_tensor() -> None:
    rgb = np.random.default_rng(5).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean, std = (123.7, 116.3, 103.5), (58.4, 57.1, 57.4)
    x = resample.to_planes(rgb, (48, 32), ("area", "area"), mean, std)
    assert x.shape == (1, 3, 32, 48) and x.dtype == np.float32 and x.flags.c_contiguous
    plain = resample.to_planes(rgb, (48, 32), ("area", "area"), (0.0,) * 3, (1.0,) * 3)
    want = (plain[0].transpose(1, 2, 0) - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(x[0], want.transpose(2, 0, 1), rtol=0, atol=1e-5)


def test_threads_change_nothing() -> None:
    rgb = _photo((1200, 900))
    with parallel.budget(1):
        one = resample.to_planes(rgb, (320, 320), ("area", "area"), (128.0,) * 3, (256.0,) * 3)
    several = resample.to_planes(rgb, (320, 320), ("area", "area"), (128.0,) * 3, (256.0,) * 3)
    assert np.array_equal(one, several)


@pytest.mark.parametrize("kernels", [("area", "lanczos"), ("lanczos", "lanczos")])
def test_strips_change_nothing(
    monkeypatch: pytest.MonkeyPatch, kernels: tuple[resample.Kernel, resample.Kernel]
) -> None:
    # 150 output rows: two whole strips of 64 and a short last one, against one strip.
    rgb = _photo((140, 300))
    strips = resample.to_planes(rgb, (160, 150), kernels, (128.0,) * 3, (256.0,) * 3)
    monkeypatch.setattr(resample, "STRIP_ROWS", 4096)
    whole = resample.to_planes(rgb, (160, 150), kernels, (128.0,) * 3, (256.0,) * 3)
    assert np.array_equal(strips, whole)
