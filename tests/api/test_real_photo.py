"""One real photo end to end through the in-process app and the real model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cleancut.api.app import create_app
from cleancut.config import ServerSettings, Settings
from cleancut.core.predict import ModelPool
from tests.api.conftest import wait_done
from tests.conftest import require_shared

pytestmark = pytest.mark.model


def test_photo_job_mask_and_effects(tmp_path: Path, real_pool: ModelPool) -> None:
    folder = require_shared() / "people-removebg"
    photo = (folder / "images" / "p101.jpg").read_bytes()
    truth = np.asarray(Image.open(folder / "masks" / "p101.png").convert("L")) > 127
    server = ServerSettings(data_dir=tmp_path / "data", rate_limit={"per_minute": 0, "burst": 1})
    settings = Settings(server=server)
    with TestClient(create_app(settings, pool=real_pool)) as client:
        files = {"file": ("p101.jpg", photo, "image/jpeg")}
        job = wait_done(client, client.post("/v1/jobs", files=files).json()["id"], limit=300)
        assert job["status"] == "succeeded", job
        mask = np.asarray(Image.open(io.BytesIO(client.get(job["links"]["mask"]).content)))
        assert mask.shape == truth.shape
        found = mask > 127
        iou = (found & truth).sum() / max(1, (found | truth).sum())
        assert iou > 0.85, iou
        cutout = Image.open(io.BytesIO(client.get(job["links"]["result"]).content))
        assert cutout.mode == "RGBA"
        assert np.array_equal(np.asarray(cutout.getchannel("A")), mask)
        effects = {"options": {"background": {"type": "color", "color": "white"}, "trim": True}}
        child = client.post(f"/v1/jobs/{job['id']}/effects", json=effects).json()
        assert child["status"] == "succeeded"
        assert "inference" not in child["timings"]  # the stored matte, no model run
        framed = Image.open(io.BytesIO(client.get(child["links"]["result"]).content))
        assert framed.size[0] <= cutout.size[0]
        assert framed.size[1] <= cutout.size[1]
