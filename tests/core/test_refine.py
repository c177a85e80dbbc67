from __future__ import annotations

import dataclasses
import itertools
import math
import tracemalloc

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

import cleancut
from cleancut.core import refine, refine_band, refine_fg
from cleancut.core.predict import ModelPool
from cleancut.core.refine_band import PassParams, refine_pass
from cleancut.core.refine_ops import TILE, Tile, grid
from cleancut.errors import InvalidInput, InvalidOptions
from tests.conftest import require_shared

U8 = NDArray[np.uint8]
FG = (225, 120, 40)
GREEN = (0, 200, 0)


def _soft_disc(size: int = 160, radius: float = 50.0, soft: float = 3.0) -> NDArray[np.float64]:
    """A disc whose edge ramps over ``soft`` px, plus a few thin strands leaving it: alpha
    in [0, 1] as float64."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(yy - size / 2, xx - size / 2)
    alpha = np.clip((radius + soft / 2 - r) / soft, 0.0, 1.0)
    for angle in np.linspace(0.3, 2.8, 5):
        end = (size / 2 + (radius + 20) * np.cos(angle), size / 2 + (radius + 20) * np.sin(angle))
        strand = np.zeros((size, size), np.float32)
        cv2.line(
            strand, (size // 2, size // 2), (round(end[0]), round(end[1])), 0.6, 1, cv2.LINE_AA
        )
        alpha = np.maximum(alpha, strand)
    return alpha


def _composite(
    alpha: NDArray[np.float64], fg: tuple[int, int, int], bg: tuple[int, int, int]
) -> U8:
    rng = np.random.default_rng(7)
    h, w = alpha.shape
    f = np.zeros((h, w, 3)) + np.asarray(fg, np.float64)
    f += rng.normal(0.0, 4.0, (h, w, 1))  # a little texture, as on real fur or cloth
    a = alpha[..., None]
    out: U8 = np.clip(a * f + (1 - a) * np.asarray(bg, np.float64) + 0.5, 0, 255).astype(np.uint8)
    return out


def _u8(x: NDArray[np.float64]) -> U8:
    out: U8 = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def _degrade(alpha: NDArray[np.float64], sigma: float = 1.5, shift: int = 2) -> U8:
    """What the model delivers: a matte that is too soft and a little off."""
    blurred = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), sigma)
    return _u8(np.roll(blurred, shift, axis=1).astype(np.float64))


def _edge_band(truth: U8, radius: int = 8) -> NDArray[np.bool_]:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    fg = (truth >= 128).astype(np.uint8)
    return (cv2.dilate(fg, k) > 0) & ~(cv2.erode(fg, k) > 0)


def _edge_mae(pred: U8, truth: U8) -> float:
    band = _edge_band(truth)
    return float(np.abs(pred.astype(np.float64) - truth)[band].mean() / 255.0)


@pytest.fixture(scope="module")
def scene() -> tuple[U8, U8, U8]:
    """(photo, true alpha, degraded alpha) for a soft disc over green."""
    truth = _soft_disc()
    return _composite(truth, FG, GREEN), _u8(truth), _degrade(truth)


# ---------------------------------------------------------------- refine


@pytest.mark.parametrize(("level", "gain"), [(1, 0.97), (2, 0.9), (3, 0.85)])
def test_levels_bring_a_degraded_matte_closer_to_the_truth(
    scene: tuple[U8, U8, U8], level: int, gain: float
) -> None:
    rgb, truth, coarse = scene
    before = _edge_mae(coarse, truth)
    after = _edge_mae(refine.refine(rgb, coarse, level), truth)
    assert after < gain * before, (level, before, after)


def test_level_zero_is_the_matte_itself(scene: tuple[U8, U8, U8]) -> None:
    rgb, _, coarse = scene
    np.testing.assert_array_equal(refine.refine(rgb, coarse, 0), coarse)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_shape_and_dtype(scene: tuple[U8, U8, U8], level: int) -> None:
    rgb, _, coarse = scene
    out = refine.refine(rgb, coarse, level)
    assert out.shape == coarse.shape and out.dtype == np.uint8


@pytest.mark.parametrize("level", [1, 2, 3])
def test_definite_regions_and_holes_stay(level: int) -> None:
    # A ring (a frame with a hole) and a small separate hole, over a contrasting background.
    size = 200
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - 100, xx - 100)
    truth = ((r < 80) & (r > 35)).astype(np.float64)
    truth[(np.hypot(yy - 100, xx - 160) < 6)] = 0.0  # a hole narrower than most bands
    rgb = _composite(truth, FG, GREEN)
    coarse = _u8(cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 1.5).astype(np.float64))
    out = refine.refine(rgb, coarse, level)
    far = 4  # beyond the band (2 px at this size) and its reach
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * far + 1, 2 * far + 1))
    sure_fg = cv2.erode((coarse >= 128).astype(np.uint8), k) > 0
    sure_bg = cv2.erode((coarse < 128).astype(np.uint8), k) > 0
    np.testing.assert_array_equal(out[sure_fg], coarse[sure_fg])
    np.testing.assert_array_equal(out[sure_bg], coarse[sure_bg])
    assert out[100, 100] == 0  # the ring's hole stays transparent
    assert out[100, 160] < 64  # and so does the small one


def test_no_edge_means_no_change() -> None:
    rgb = np.full((40, 50, 3), 90, np.uint8)
    for alpha in (np.zeros((40, 50), np.uint8), np.full((40, 50), 255, np.uint8)):
        for level in (1, 2, 3):
            np.testing.assert_array_equal(refine.refine(rgb, alpha, level), alpha)


def test_no_stretching_of_a_faint_matte() -> None:
    # A subject the model barely saw: nothing reaches 0.5, so there is no contour to refine,
    # and the faint values are not stretched toward 0..255.
    rgb = np.random.default_rng(3).integers(0, 255, (60, 60, 3), dtype=np.uint8)
    faint = np.zeros((60, 60), np.uint8)
    faint[20:40, 20:40] = 60
    np.testing.assert_array_equal(refine.refine(rgb, faint, 3), faint)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_tiling_changes_nothing(scene: tuple[U8, U8, U8], level: int) -> None:
    rgb, _, coarse = scene
    whole = refine.refine(rgb, coarse, level, tile=4096)
    np.testing.assert_array_equal(refine.refine(rgb, coarse, level, tile=24), whole)


@pytest.mark.parametrize(
    ("h", "w", "r", "size"), [(90, 130, 7, 32), (40, 300, 45, 24), (9, 9, 6, 8)]
)
def test_confidence_per_tile_is_the_whole_matte_filter(h: int, w: int, r: int, size: int) -> None:
    # Every tile (interior, at each border, and windows wider than the image) gets exactly
    # the values that one box filter over the whole matte gives its core.
    alpha = (np.random.default_rng(h).random((h, w)) * 255).astype(np.uint8)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 3)
    spread = cv2.absdiff(alpha, cv2.bitwise_not(alpha))
    whole = cv2.blur(spread, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)
    for t in grid(alpha.shape, 0, size):
        np.testing.assert_array_equal(refine_band._confidence(alpha, r, t), whole[t.write])


def test_large_images_take_the_shrunk_statistics_path() -> None:
    # Wider than 1024 px, so colour statistics are block-averaged (and sampled back per tile).
    truth = np.zeros((60, 2100))
    truth[:, 700:1400] = 1.0
    rgb = _composite(truth, FG, GREEN)
    coarse = _degrade(truth, sigma=4.0, shift=3)
    out = refine_pass(rgb, coarse, PassParams(), tile=256)
    assert _edge_mae(out, _u8(truth)) < _edge_mae(coarse, _u8(truth))
    np.testing.assert_array_equal(refine_pass(rgb, coarse, PassParams(), tile=4096), out)


@pytest.mark.parametrize("level", [-1, 4, 1.5, True, "1", None])
def test_invalid_level(scene: tuple[U8, U8, U8], level: object) -> None:
    rgb, _, coarse = scene
    with pytest.raises(InvalidOptions):
        refine.refine(rgb, coarse, level)  # type: ignore[arg-type]


def test_mismatched_inputs(scene: tuple[U8, U8, U8]) -> None:
    rgb, _, coarse = scene
    with pytest.raises(InvalidInput):
        refine.refine(rgb, coarse[:-1], 1)
    with pytest.raises(InvalidInput):
        refine.decontaminate(rgb[..., :2], coarse, 0.5)


# ---------------------------------------------------------------- decontamination


def _fringe_error(shown: U8, f: U8, alpha: U8) -> float:
    soft = (alpha > 12) & (alpha < 243)
    return float(np.abs(shown.astype(np.float64) - f).mean(axis=2)[soft].mean())


@pytest.fixture(scope="module")
def green_screen() -> tuple[U8, U8, U8]:
    """(composite over green, true alpha, true foreground colours)."""
    truth = _soft_disc(soft=6.0)
    f = _composite(np.ones_like(truth), FG, GREEN)
    a = truth[..., None]
    comp = np.clip(a * f + (1 - a) * np.asarray(GREEN, np.float64) + 0.5, 0, 255).astype(np.uint8)
    return comp, _u8(truth), f


def test_decontamination_removes_the_green_fringe(green_screen: tuple[U8, U8, U8]) -> None:
    comp, alpha, f = green_screen
    errors = [
        _fringe_error(refine.decontaminate(comp, alpha, s), f, alpha) for s in (0.0, 0.25, 0.5, 1.0)
    ]
    assert errors[-1] < 0.35 * errors[0], errors
    assert all(b < a for a, b in itertools.pairwise(errors)), errors


def test_strength_zero_is_identity_and_opaque_pixels_never_change(
    green_screen: tuple[U8, U8, U8],
) -> None:
    comp, alpha, _ = green_screen
    np.testing.assert_array_equal(refine.decontaminate(comp, alpha, 0.0), comp)
    full = refine.decontaminate(comp, alpha, 1.0)
    fixed = (alpha == 0) | (alpha == 255)
    np.testing.assert_array_equal(full[fixed], comp[fixed])


def test_strength_blends_linearly(green_screen: tuple[U8, U8, U8]) -> None:
    # bench/refinement.py relies on this to score several strengths from one estimate.
    comp, alpha, _ = green_screen
    full = refine.decontaminate(comp, alpha, 1.0).astype(np.float64)
    half = refine.decontaminate(comp, alpha, 0.5).astype(np.float64)
    expected = np.floor(comp + 0.5 * (full - comp) + 0.5)
    assert np.abs(half - expected).max() <= 1


@pytest.mark.parametrize("strength", [-0.1, 1.5, math.nan, math.inf, "0.5", True])
def test_invalid_strength(green_screen: tuple[U8, U8, U8], strength: object) -> None:
    comp, alpha, _ = green_screen
    with pytest.raises(InvalidOptions):
        refine.decontaminate(comp, alpha, strength)  # type: ignore[arg-type]


def test_foreground_estimate_is_tile_exact(green_screen: tuple[U8, U8, U8]) -> None:
    comp, alpha, _ = green_screen
    whole = refine.estimate_foreground(comp, alpha, tile=4096)
    np.testing.assert_array_equal(refine.estimate_foreground(comp, alpha, tile=16), whole)


def test_foreground_of_large_images_is_solved_small_and_corrected(
    green_screen: tuple[U8, U8, U8],
) -> None:
    # Beyond work_side the solve runs on a shrunk copy; the full-resolution correction
    # must still remove most of the fringe, tile by tile.
    comp, alpha, f = green_screen
    small = refine_fg.estimate(comp, alpha, tile=4096, work_side=64)
    assert _fringe_error(small, f, alpha) < 0.5 * _fringe_error(comp, f, alpha)
    tiled = refine_fg.estimate(comp, alpha, tile=40, work_side=64)
    assert np.abs(tiled.astype(int) - small).max() <= 1


# ---------------------------------------------------------------- a real photo


@pytest.mark.model
@pytest.mark.parametrize(
    "photo",
    [
        "alphamatting/images/GT01.png",  # hair against a soft, textured background
        "davis16/images/blackswan_00000.jpg",  # a solid outline against water
    ],
)
def test_real_photo_levels_beat_the_raw_matte(real_pool: ModelPool, photo: str) -> None:
    path = require_shared() / photo
    result = cleancut.remove(path, pool=real_pool, level=0)
    with Image.open(path.parent.parent / "masks" / f"{path.stem}.png") as im:
        gt = np.asarray(im.convert("L"), dtype=np.uint8)
    base = _edge_mae(result.alpha, gt)
    errors = [_edge_mae(result.with_options(level=lv).alpha, gt) for lv in (1, 2, 3)]
    assert all(e < base for e in errors), (base, errors)
    # Decontamination leaves the matte alone and changes colours only at soft edges.
    clean = result.with_options(level=2, decontaminate=1.0)
    assert clean.foreground is not None
    fixed = (clean.alpha == 0) | (clean.alpha == 255)
    np.testing.assert_array_equal(clean.foreground[fixed], result.image.rgb[fixed])


# ---------------------------------------------------------------- a 12 MP photo


def test_twelve_megapixels_work_in_edge_tiles_with_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 4000×3000 disc whose model-like edge ramps over ~12 px: only the tiles along its
    # outline may be worked on, and no full-size float copy of the photo may appear.
    h, w = 3000, 4000
    yy, xx = np.ogrid[0:h, 0:w]
    ramp = np.clip((1000.0 - np.hypot(yy - h / 2, xx - w / 2)) / 12.0 + 0.5, 0.0, 1.0)
    alpha = _u8(ramp)
    del ramp
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0] = np.where(alpha >= 128, 220, 20)
    rgb[..., 1] = np.where(alpha >= 128, 120, 200)
    rgb[..., 2] = 60
    worked: list[tuple[int, int]] = []
    real_tile = refine_band._tile

    def spy(rgb: U8, alpha: U8, stats: object, model: object, t: Tile, *args: object) -> object:
        worked.append((t.py1 - t.py0, t.px1 - t.px0))
        return real_tile(rgb, alpha, stats, model, t, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(refine_band, "_tile", spy)
    tracemalloc.start()
    try:
        out = refine.refine(rgb, alpha, 3)
        _, peak_refine = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        refine.decontaminate(rgb, out, 0.5)
        _, peak_decontaminate = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    passes = len(refine.PASSES[3])
    area = sum(th * tw for th, tw in worked) / passes
    assert area < 0.25 * h * w, area / (h * w)
    limit = TILE + 2 * 24  # the tile plus the largest halo at this size
    assert max(max(shape) for shape in worked) <= limit
    # Bytes per pixel at the peak, output included: a few uint8/bool planes, never a float
    # image (which alone would be 12 bytes per pixel).
    assert peak_refine < 8 * h * w, peak_refine / (h * w)
    assert peak_decontaminate < 12 * h * w, peak_decontaminate / (h * w)
    # Along a row through the centre, the soft ramp became (nearly) the photo's step edge.
    step = np.where(rgb[1500, :, 0] == 220, 255, 0)
    assert np.abs(out[1500].astype(int) - step).sum() < 0.5 * np.abs(alpha[1500] - step).sum()
    assert out[1500, 2000] == 255 and out[0, 0] == 0


def test_large_photos_snap_with_a_coarse_guided_filter_close_to_the_full_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2,200 px wide: twice the model's grid, so the snap's filter model is computed on the
    # photo shrunk 2× and applied at full resolution. It must give (nearly) the matte the
    # full-resolution filter gives, improve the edge as much, and not depend on tiling.
    truth = np.zeros((300, 2200))
    yy, xx = np.mgrid[0:300, 0:2200]
    truth[np.hypot(yy - 150, xx - 1100) < 120] = 1.0
    rgb = _composite(truth, FG, GREEN)
    coarse = _degrade(truth, sigma=6.0, shift=4)
    fast = refine_pass(rgb, coarse, PassParams(), tile=128)
    assert refine_band._Geometry.of(coarse.shape, PassParams()).coarse == 2
    np.testing.assert_array_equal(refine_pass(rgb, coarse, PassParams(), tile=4096), fast)
    real_of = refine_band._Geometry.of

    def full_resolution(shape: tuple[int, ...], p: PassParams) -> refine_band._Geometry:
        return dataclasses.replace(real_of(shape, p), coarse=1)

    monkeypatch.setattr(refine_band._Geometry, "of", staticmethod(full_resolution))
    full = refine_pass(rgb, coarse, PassParams(), tile=128)
    diff = np.abs(fast.astype(int) - full)
    assert diff.mean() < 0.25  # of 255 levels, over the photo
    assert (diff > 32).mean() < 1e-3
    edge = _edge_mae(coarse, _u8(truth))
    assert _edge_mae(fast, _u8(truth)) < 0.8 * edge
    assert abs(_edge_mae(fast, _u8(truth)) - _edge_mae(full, _u8(truth))) < 0.05 * edge
