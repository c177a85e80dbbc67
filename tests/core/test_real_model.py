"""The real ISNet weights on real photos from ../shared/eval (read in place, never copied).

The per-photo IoU bar applies to photos with one clear subject: first frames of DAVIS
scenes without heavy motion blur or occlusion, and the first two photos (by name) of ECSSD
and the people set. The hard cases (breakdance, horsejump-high, ...) are measured over the
whole eval sets by bench/quality.py instead of being asserted one by one.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cleancut
from cleancut.config import Settings
from cleancut.core.predict import ModelPool
from tests.conftest import EVAL, require_shared

pytestmark = pytest.mark.model

CLEAR_SUBJECTS = (
    "davis16/blackswan_00000.jpg",
    "davis16/car-roundabout_00000.jpg",
    "davis16/cows_00000.jpg",
    "davis16/dog_00000.jpg",
    "davis16/drift-straight_00000.jpg",
    "ecssd/0005.jpg",
    "ecssd/0011.jpg",
    "people-removebg/p001.jpg",
    "people-removebg/p004.jpg",
)


def _photo(rel: str) -> Path:
    folder, name = rel.split("/")
    return EVAL / folder / "images" / name


def _gt(photo: Path) -> np.ndarray:
    mask = photo.parent.parent / "masks" / f"{photo.stem}.png"
    with Image.open(mask) as im:
        return np.asarray(im.convert("L"))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    fa, fb = a >= 128, b >= 128
    return float((fa & fb).sum() / max((fa | fb).sum(), 1))


@pytest.mark.parametrize("rel", CLEAR_SUBJECTS)
def test_real_photo_iou(real_pool: ModelPool, rel: str) -> None:
    require_shared()
    photo = _photo(rel)
    result = cleancut.remove(photo, pool=real_pool)
    gt = _gt(photo)
    assert result.alpha.shape == gt.shape
    assert _iou(result.alpha, gt) >= 0.85
    # The cut-out is a valid RGBA PNG whose alpha is the matte.
    with Image.open(io.BytesIO(result.encode())) as png:
        assert png.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(png)[..., 3], result.alpha)


def test_exif_rotated_photo_gives_the_rotated_mask(real_pool: ModelPool) -> None:
    eval_dir = require_shared()
    photo = eval_dir / "davis16" / "images" / "blackswan_00000.jpg"
    with Image.open(photo) as im:
        upright = im.convert("RGB")
    # Store the pixels rotated and let EXIF orientation 6 (rotate 90° CW on display) undo it.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    rotated = cleancut.remove(buf.getvalue(), pool=real_pool)
    plain = cleancut.remove(upright, pool=real_pool)
    assert rotated.size == plain.size == upright.size
    assert _iou(rotated.alpha, plain.alpha) >= 0.97


def _reference_pool(real_pool: ModelPool, **inference: str) -> ModelPool:
    return Settings(cache_dir=real_pool.weights.root, inference=inference).model_pool()


def test_float_precision_matches_fp32_reference(real_pool: ModelPool) -> None:
    """The float graph (OpenVINO, bf16 where the CPU has it) stays within 0.005 mean absolute
    difference of onnxruntime's fp32 result."""
    eval_dir = require_shared()
    reference = _reference_pool(real_pool, runtime="onnxruntime")
    floats = _reference_pool(real_pool, precision="float")
    assert "int8" not in floats.get("isnet-general").runtime
    for photo in (
        eval_dir / "ecssd" / "images" / "0005.jpg",
        eval_dir / "people-removebg" / "images" / "p001.jpg",
    ):
        ours = cleancut.remove(photo, pool=floats).alpha.astype(np.float32) / 255
        ref = cleancut.remove(photo, pool=reference).alpha.astype(np.float32) / 255
        assert float(np.abs(ours - ref).mean()) < 0.005


def test_default_int8_graph_agrees_with_fp32_on_clear_subjects(real_pool: ModelPool) -> None:
    """The default runs the 8-bit graph. Its masks agree with onnxruntime's fp32 ones (the
    weights rembg runs) to IoU 0.98 or better on every clear-subject photo, and within 0.01
    mean absolute alpha difference (measured: IoU 0.990-0.999, difference 0.0003-0.0064).
    Quality against ground truth over all eval photos is bench/quality.py's."""
    require_shared()
    assert "int8" in real_pool.get("isnet-general").runtime
    reference = _reference_pool(real_pool, runtime="onnxruntime")
    ious = []
    for rel in CLEAR_SUBJECTS:
        photo = _photo(rel)
        ours = cleancut.remove(photo, pool=real_pool).alpha
        ref = cleancut.remove(photo, pool=reference).alpha
        ious.append(_iou(ours, ref))
        assert ious[-1] >= 0.98, rel
        assert float(np.abs(ours.astype(np.float32) - ref).mean()) / 255 < 0.01, rel
    assert float(np.mean(ious)) >= 0.99


def test_quantised_model_runs(real_pool: ModelPool) -> None:
    eval_dir = require_shared()
    photo = eval_dir / "davis16" / "images" / "blackswan_00000.jpg"
    result = cleancut.remove(photo, model="isnet-general-q8", pool=real_pool)
    assert _iou(result.alpha, _gt(photo)) >= 0.85
