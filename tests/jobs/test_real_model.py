"""The job service with the real ISNet weights on a photo from ../shared/eval (read in place)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cleancut.core.predict import ModelPool
from cleancut.core.types import Background, Options, OutputSpec
from cleancut.jobs.model import CUTOUT, MASK, JobStatus
from cleancut.jobs.service import Submission
from tests.conftest import require_shared
from tests.jobs.conftest import CountingPool, Factory

pytestmark = pytest.mark.model


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def test_real_photo_job_then_effects(make_service: Factory, real_pool: ModelPool) -> None:
    eval_dir = require_shared()
    photo = (eval_dir / "ecssd" / "images" / "0005.jpg").read_bytes()
    truth = np.asarray(Image.open(eval_dir / "ecssd" / "masks" / "0005.png").convert("L")) > 127
    counting = CountingPool(real_pool)
    svc = make_service(counting, warm_models=("isnet-general",), job_timeout=120)
    webp = Options(output=OutputSpec(format="webp"))
    done = svc.run_sync(Submission(webp, upload=photo), timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error_message
    assert svc.ready()
    mask = np.asarray(Image.open(io.BytesIO(svc.open_blob(done, MASK)[1])))
    assert mask.shape == truth.shape
    assert _iou(mask > 127, truth) >= 0.85  # the bar of tests/core/test_real_model.py
    ref, data = svc.open_blob(done, CUTOUT)
    assert ref.media_type == "image/webp" and data[8:12] == b"WEBP"

    runs = counting.runs
    white = Options(background=Background(kind="color"), output=OutputSpec(format="jpeg"))
    child = svc.apply_effects(done.id, white)
    assert counting.runs == runs
    with Image.open(io.BytesIO(svc.open_blob(child, CUTOUT)[1])) as img:
        assert (img.format, img.size) == ("JPEG", (truth.shape[1], truth.shape[0]))
