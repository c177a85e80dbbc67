"""The model's input tensor: resizing (with the halving fast path) and normalisation."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from PIL import Image

from cleancut.core.blob import halve, to_blob
from cleancut.core.models import ModelSpec
from tests.conftest import require_shared


def _one_step(spec: ModelSpec, rgb: np.ndarray) -> np.ndarray:
    """Exact area averaging in one step (in float: no rounding to bytes)."""
    small = cv2.resize(rgb.astype(np.float32), spec.input_size, interpolation=cv2.INTER_AREA)
    planar = (small - np.float32(spec.mean)) / np.float32(spec.std)
    return planar.transpose(2, 0, 1)[np.newaxis]


def test_halve_averages_2x2_blocks_while_the_result_stays_large_enough() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (1001, 2203, 3), dtype=np.uint8)
    out = halve(rgb, (512, 250))
    # 2203×1001 → 1101×500 → 550×250; one more halving would fall below 250 rows
    assert out.shape == (250, 550, 3) and out.dtype == np.uint8
    once = rgb[:1000, :2202].astype(np.float64).reshape(500, 2, 1101, 2, 3).mean(axis=(1, 3))
    twice = once[:, :1100].reshape(250, 2, 550, 2, 3).mean(axis=(1, 3))
    # OpenCV rounds each halving: at most a level of difference from the exact mean
    assert np.abs(out - twice).max() <= 1.0
    small = np.zeros((300, 300, 3), np.uint8)
    assert halve(small, (200, 200)) is small  # nothing to halve: the same array


def test_a_large_photo_gives_the_tensor_of_a_one_step_area_resize(tiny_spec: ModelSpec) -> None:
    with Image.open(require_shared() / "davis16" / "images" / "blackswan_00000.jpg") as im:
        big = np.asarray(im.convert("RGB").resize((3654, 3284), Image.Resampling.LANCZOS))
    spec = dataclasses.replace(tiny_spec, input_size=(1024, 1024))
    got = to_blob(spec, big)
    want = _one_step(spec, big)
    assert got.shape == want.shape == (1, 3, 1024, 1024)
    # a quarter of a level on average, in the model's units (one level is 1/std)
    level = 1.0 / float(np.max(spec.std))
    assert float(np.abs(got - want).mean()) < 0.35 * level
    # the dropped odd row shifts sharp edges by a fraction of a pixel: a few levels there
    assert float(np.abs(got - want).max()) <= 8 * level
