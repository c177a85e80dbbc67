"""POST /v1/remove: upload in, image out, with timing headers."""

from __future__ import annotations

import io
import json

from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import MakeApp, assert_error, png_bytes


def test_sync_remove_returns_the_image(client: TestClient) -> None:
    r = client.post("/v1/remove", files={"file": ("a.png", png_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert int(r.headers["content-length"]) == len(r.content)
    img = Image.open(io.BytesIO(r.content))
    assert (img.mode, img.size) == ("RGBA", (200, 150))
    assert r.headers["x-cleancut-job-id"]
    for stage in ("Decode", "Inference", "Encode", "Total"):
        assert float(r.headers[f"x-cleancut-{stage.lower()}-ms"]) >= 0
    assert "inference;dur=" in r.headers["server-timing"]
    # the job behind it is an ordinary job
    job = client.get(f"/v1/jobs/{r.headers['x-cleancut-job-id']}").json()
    assert job["status"] == "succeeded"


def test_sync_remove_takes_the_same_options(client: TestClient) -> None:
    options = {"format": "jpeg", "jpeg_background": "#00ff00", "trim": True}
    r = client.post(
        "/v1/remove",
        files={"file": ("a.png", png_bytes(), "image/png")},
        data={"options": json.dumps(options)},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    width, height = Image.open(io.BytesIO(r.content)).size  # trimmed to the subject (100×70)
    assert abs(width - 100) <= 4
    assert abs(height - 70) <= 4


def test_sync_errors(client: TestClient) -> None:
    bad = {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x01" * 50, "image/png")}
    assert_error(client.post("/v1/remove", files=bad), 422, "corrupt_image")
    assert_error(client.post("/v1/remove", files={"file": ("a", b"text", "text/plain")}), 415)


def test_sync_timeout_is_504_and_the_job_keeps_running(make_app: MakeApp) -> None:
    import numpy as np

    with TestClient(make_app(sync_timeout=0.001), raise_server_exceptions=False) as client:
        big = png_bytes(np.full((1500, 2000, 3), 200, dtype=np.uint8))
        r = client.post("/v1/remove", files={"file": ("a.png", big, "image/png")})
        err = assert_error(r, 504, "job_timeout")
        assert "/v1/jobs/" in err["hint"]
