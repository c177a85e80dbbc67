"""Refinement and decontamination wired through Options, the pipeline and Result: the
model matte is kept, other refine options are applied without the model, and the
decontaminated colours reach every output."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

import cleancut
from cleancut.core import refine
from cleancut.core.predict import ModelPool
from cleancut.core.result import Result
from cleancut.core.types import DEFAULT_REFINE_LEVEL, Options, Refine
from cleancut.errors import InvalidOptions
from tests import tinymodels

BOX = (50, 40, 150, 110)


@pytest.fixture
def result(tiny_pool: ModelPool) -> Result:
    return cleancut.remove(tinymodels.square_image(box=BOX), model="tiny", pool=tiny_pool)


def _open(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGBA"))


def _soft(alpha: np.ndarray) -> np.ndarray:
    return (alpha > 0) & (alpha < 255)


# ---------------------------------------------------------------- options


def test_refine_defaults_and_flat_keywords() -> None:
    assert Options().refine == Refine(DEFAULT_REFINE_LEVEL, 0.0)
    opts = cleancut.build_options(level=1, decontaminate=0.25)
    assert opts.refine == Refine(level=1, decontaminate=0.25)
    assert cleancut.build_options(refine=Refine(3)).refine.level == 3
    assert Refine(decontaminate=1).decontaminate == 1  # an int strength is fine


@pytest.mark.parametrize(
    "kwargs",
    [
        {"level": 4},
        {"level": -1},
        {"level": 1.0},
        {"level": True},
        {"level": "2"},
        {"decontaminate": 1.01},
        {"decontaminate": -0.1},
        {"decontaminate": math.nan},
        {"decontaminate": "0.5"},
        {"decontaminate": False},
    ],
)
def test_bad_refine_options_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidOptions):
        Refine(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptions):
        cleancut.build_options(**kwargs)


# ---------------------------------------------------------------- pipeline and Result


def test_pipeline_keeps_the_model_matte_and_refines_it(result: Result) -> None:
    assert result.matte is not None and result.foreground is None
    expected = refine.refine(result.image.rgb, result.matte, DEFAULT_REFINE_LEVEL)
    np.testing.assert_array_equal(result.alpha, expected)
    assert not np.array_equal(result.alpha, result.matte)  # the tiny model's edge is soft
    assert result.timings.refine > 0


def test_with_options_re_refines_without_the_model(result: Result) -> None:
    raw = result.with_options(level=0)
    assert raw.matte is result.matte
    np.testing.assert_array_equal(raw.alpha, result.model_matte)
    back = raw.with_options(level=DEFAULT_REFINE_LEVEL)
    np.testing.assert_array_equal(back.alpha, result.alpha)
    # Effects that leave refinement alone reuse the refined matte as it is.
    assert result.with_options(trim=True).alpha is result.alpha


def test_decontaminated_colours_reach_every_output(result: Result) -> None:
    clean = result.with_options(decontaminate=1.0)
    assert clean.foreground is not None
    np.testing.assert_array_equal(clean.alpha, result.alpha)
    soft = _soft(clean.alpha)
    assert soft.any()
    # The square is (235, 230, 225) on a background of 20: its soft edge was darkened by
    # the background and is brought back toward the square's colour.
    subject = np.array([235, 230, 225])
    before = np.abs(result.rgba()[soft][:, :3].astype(int) - subject).mean()
    after = np.abs(clean.rgba()[soft][:, :3].astype(int) - subject).mean()
    assert after < 0.5 * before, (before, after)
    # The PNG cut-out, and a composite over a colour, carry the same colours.
    png = _open(clean.encode(format="png"))
    np.testing.assert_array_equal(png, clean.rgba())
    over_red = clean.with_options(kind="color", color=(255, 0, 0, 255))
    assert over_red.foreground is clean.foreground
    flat = over_red.composite().pixels.astype(int)
    a = clean.alpha[..., None].astype(int)
    want = (over_red.foreground.astype(int) * a + np.array([255, 0, 0]) * (255 - a) + 127) // 255
    assert np.abs(flat - want)[soft].max() <= 1
    # Strength 0 changes nothing.
    assert result.with_options(decontaminate=0.0).foreground is None


def test_from_mask_and_compose_refine_the_stored_matte(result: Result) -> None:
    again = Result.from_mask(result.image, result.model_matte, result.options)
    np.testing.assert_array_equal(again.alpha, result.alpha)
    raw = Result.from_mask(result.image, result.model_matte, Options(refine=Refine(0)))
    np.testing.assert_array_equal(raw.alpha, result.model_matte)
    original, mask = io.BytesIO(), io.BytesIO()
    Image.fromarray(result.image.rgb).save(original, "PNG")
    Image.fromarray(result.model_matte).save(mask, "PNG")
    composed = cleancut.compose(original.getvalue(), mask.getvalue(), level=3, decontaminate=0.5)
    np.testing.assert_array_equal(
        composed.alpha, refine.refine(result.image.rgb, result.model_matte, 3)
    )
    assert composed.foreground is not None


def test_refinement_never_uncovers_source_transparency(tiny_pool: ModelPool) -> None:
    rgba = np.zeros((150, 200, 4), np.uint8)
    rgba[..., :3] = tinymodels.square_image(box=BOX)
    rgba[..., 3] = 255
    rgba[:, :100, 3] = 0  # cuts through the square: an edge right where refinement works
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    for level in (0, 1, 2, 3):
        res = cleancut.remove(buf.getvalue(), model="tiny", pool=tiny_pool, level=level)
        assert res.alpha[:, :100].max() == 0, level
        assert res.with_options(level=3).alpha[:, :100].max() == 0
