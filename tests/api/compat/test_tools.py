"""The self-hosted tools API (seed 004): the seed's two curl examples as written, the SSE
progress stream, downloads (and their traversal guard), effects without the model, the error
envelope, and one run of the real model through a ``cleancut serve`` process."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cleancut.api.compat.tools_settings import display_name, stem
from cleancut.jobs.model import JobStatus
from tests import tinymodels
from tests.api.conftest import KEY, OTHER_KEY, MakeApp, png_bytes, submit, wait_done
from tests.api.serverproc import ServerProcess
from tests.conftest import require_shared
from tests.polling import sse_events

REMOVE = "/api/v1/tools/remove-background"
EFFECTS = "/api/v1/tools/remove-background/effects"
#: The seed's examples, as written.
SEED_SETTINGS = '{"backgroundType":"transparent","edgeRefine":2,"outputFormat":"png"}'
SEED_EFFECTS = (
    '{{"jobId":"{job}","filename":"photo.jpg","backgroundType":"color",'
    '"backgroundColor":"#FF5500","outputFormat":"png"}}'
)
RESULT_KEYS = {
    "jobId",
    "downloadUrl",
    "maskUrl",
    "originalUrl",
    "originalSize",
    "processedSize",
    "filename",
    "model",
}


def photo_jpg() -> bytes:
    return png_bytes(fmt="JPEG")


def post_photo(
    client: TestClient,
    settings: str | None = SEED_SETTINGS,
    data: bytes | None = None,
    name: str = "photo.jpg",
    headers: dict[str, str] | None = None,
) -> Any:
    files = {"file": (name, photo_jpg() if data is None else data, "image/jpeg")}
    form = {"settings": settings} if settings is not None else {}
    return client.post(REMOVE, files=files, data=form, headers=headers or {})


def read_progress(client: TestClient, job_id: str, **headers: str) -> list[dict[str, Any]]:
    """The data of every frame; each must be an ``event: progress`` frame."""
    frames: list[dict[str, Any]] = []
    url = f"/api/v1/jobs/{job_id}/progress"
    with client.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        name, data = "", ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
            elif not line and data:
                assert name == "progress"
                frames.append(json.loads(data))
                name, data = "", ""
    return frames


def assert_tools_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) <= {"error", "code", "details"} and {"error", "code"} <= set(body), body
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_result(result: dict[str, Any], job_id: str) -> None:
    assert set(result) == RESULT_KEYS
    assert result["jobId"] == job_id
    for key in ("downloadUrl", "maskUrl", "originalUrl"):
        assert result[key].startswith("/api/v1/download/"), result
    for key in ("originalSize", "processedSize"):
        assert isinstance(result[key], int) and result[key] > 0
    assert isinstance(result["filename"], str) and isinstance(result["model"], str)


def finished(client: TestClient, job_id: str, **headers: str) -> dict[str, Any]:
    frames = read_progress(client, job_id, **headers)
    last = frames[-1]
    assert last["phase"] == "complete", frames
    assert set(last) >= {"phase", "percent", "result"}
    assert last["percent"] == 100
    return last


def test_the_seed_examples_work_as_written(client: TestClient) -> None:
    upload = photo_jpg()
    r = post_photo(client, data=upload)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) == {"jobId", "async"} and accepted["async"] is True
    job_id = accepted["jobId"]
    assert str(uuid.UUID(job_id)) == job_id

    frames = read_progress(client, job_id)
    for frame in frames[:-1]:
        assert frame["phase"] == "processing"
        assert isinstance(frame["stage"], str) and frame["stage"]
        assert isinstance(frame["percent"], int) and 0 <= frame["percent"] < 100
    last = frames[-1]
    assert {k: last[k] for k in ("phase", "percent")} == {"phase": "complete", "percent": 100}
    result = last["result"]
    assert_result(result, job_id)
    base = f"/api/v1/download/{job_id}"
    assert result["downloadUrl"] == result["maskUrl"] == f"{base}/photo_mask.png"
    assert result["originalUrl"] == f"{base}/photo_original.png"
    assert result["filename"] == "photo.jpg" and result["model"] == "tiny"
    assert result["originalSize"] == len(upload)

    mask = client.get(result["maskUrl"])
    assert mask.status_code == 200 and mask.headers["content-type"] == "image/png"
    assert len(mask.content) == result["processedSize"]
    assert "photo_mask.png" in mask.headers["content-disposition"]
    with Image.open(io.BytesIO(mask.content)) as img:
        assert img.mode == "RGBA" and img.size == (200, 150)
    original = client.get(result["originalUrl"])
    assert original.status_code == 200 and original.content == upload

    effects = client.post(EFFECTS, files={"settings": (None, SEED_EFFECTS.format(job=job_id))})
    assert effects.status_code == 200, effects.text
    body = effects.json()
    assert set(body) == {"jobId", "downloadUrl", "processedSize"}
    assert body["jobId"] == job_id
    assert body["downloadUrl"].startswith("/api/v1/download/")
    assert body["downloadUrl"].endswith("/photo_nobg.png")
    nobg = client.get(body["downloadUrl"])
    assert nobg.status_code == 200 and len(nobg.content) == body["processedSize"]
    with Image.open(io.BytesIO(nobg.content)) as img:
        rgba = np.asarray(img.convert("RGBA"))
    assert tuple(rgba[2, 2]) == (255, 85, 0, 255)  # the background is #FF5500 now
    assert tuple(rgba[75, 100, :3]) != (255, 85, 0)  # the subject is not

    service = client.app.state.cleancut.service  # type: ignore[attr-defined]
    child_id = uuid.UUID(body["downloadUrl"].split("/")[4]).hex
    child = service.get(child_id)
    assert child.parent_id == uuid.UUID(job_id).hex
    assert "inference" not in child.timings  # from the cached matte: the model did not run


def test_effects_can_be_asked_for_in_phase_one(client: TestClient) -> None:
    settings = {
        "backgroundType": "gradient",
        "gradientColor1": "#000000",
        "gradientColor2": "#FFFFFF",
        "gradientAngle": 450,
        "shadowEnabled": True,
        "shadowOpacity": 40,
        "outputFormat": "webp",
        "edgeRefine": 0,
        "decontaminate": True,
        "clientJobId": "ignored",
    }
    job_id = post_photo(client, json.dumps(settings), name="My Photo.JPG").json()["jobId"]
    result = finished(client, job_id)["result"]
    assert_result(result, job_id)
    assert result["filename"] == "My Photo.JPG"
    assert result["maskUrl"] == f"/api/v1/download/{job_id}/My_Photo_mask.png"
    assert result["downloadUrl"].endswith("/My_Photo_nobg.webp")
    assert result["downloadUrl"] != result["maskUrl"]
    made = client.get(result["downloadUrl"])
    assert made.headers["content-type"] == "image/webp"
    assert len(made.content) == result["processedSize"]
    mask = client.get(result["maskUrl"])
    assert mask.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("settings", "media_type"),
    [
        ({"backgroundType": "blur", "blurIntensity": 30, "outputFormat": "avif"}, "image/avif"),
        ({"blurEnabled": True, "outputFormat": "webp"}, "image/webp"),
        ({"shadowEnabled": True}, "image/png"),
        ({"backgroundType": "transparent"}, "image/png"),
    ],
)
def test_effects_formats_and_backgrounds(
    client: TestClient, settings: dict[str, Any], media_type: str
) -> None:
    job_id = post_photo(client).json()["jobId"]
    finished(client, job_id)
    form = {"settings": (None, json.dumps({"jobId": job_id, "filename": "photo.jpg", **settings}))}
    r = client.post(EFFECTS, files=form)
    assert r.status_code == 200, r.text
    out = client.get(r.json()["downloadUrl"])
    assert out.headers["content-type"] == media_type


def test_a_background_image_is_used(client: TestClient) -> None:
    job_id = post_photo(client).json()["jobId"]
    finished(client, job_id)
    backdrop = png_bytes(np.full((30, 40, 3), (0, 0, 255), dtype=np.uint8))
    settings = {"jobId": job_id, "filename": "photo.jpg", "backgroundType": "image"}
    files: dict[str, Any] = {
        "settings": (None, json.dumps(settings)),
        "backgroundImage": ("bg.png", backdrop, "image/png"),
    }
    r = client.post(EFFECTS, files=files)
    assert r.status_code == 200, r.text
    with Image.open(io.BytesIO(client.get(r.json()["downloadUrl"]).content)) as img:
        rgba = np.asarray(img.convert("RGBA"))
    assert rgba.shape[:2] == (150, 200)
    assert tuple(rgba[2, 2]) == (0, 0, 255, 255)
    missing = client.post(EFFECTS, files={"settings": (None, json.dumps(settings))})
    assert_tools_error(missing, 400)


def test_other_input_formats_and_exif_rotation(client: TestClient) -> None:
    import pillow_heif

    pixels = tinymodels.square_image()
    heic = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(pixels)).save(heic, quality=95)
    tga = io.BytesIO()
    Image.fromarray(pixels).save(tga, "TGA")
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise
    Image.fromarray(pixels).save(rotated, "JPEG", exif=exif.tobytes())
    for name, data, size in (
        ("photo.heic", heic.getvalue(), (200, 150)),
        ("photo.tga", tga.getvalue(), (200, 150)),
        ("phone.jpg", rotated.getvalue(), (150, 200)),
    ):
        job_id = post_photo(client, data=data, name=name).json()["jobId"]
        result = finished(client, job_id)["result"]
        assert result["filename"] == name
        with Image.open(io.BytesIO(client.get(result["maskUrl"]).content)) as img:
            assert img.size == size, name


TRAVERSALS = (
    "..",
    "%2E%2E",
    "..%2F..%2Fetc%2Fpasswd",
    "%2E%2E%2F%2E%2E%2Fdata%2Fjobs.db",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "photo_mask.png%00.txt",
    "..%5C..%5Cwindows%5Cwin.ini",
    "sub%2Fphoto_mask.png",
    ".photo_mask.png",
)


def test_downloads_refuse_paths(client: TestClient) -> None:
    job_id = post_photo(client).json()["jobId"]
    finished(client, job_id)
    for name in TRAVERSALS:
        r = client.get(f"/api/v1/download/{job_id}/{name}")
        assert r.status_code in (400, 404), (name, r.text)
        assert_tools_error(r, r.status_code)
        assert not r.content.startswith(b"\x89PNG")
    escaped = client.get(f"/api/v1/download/%2E%2E%2F{job_id}/photo_mask.png")
    assert_tools_error(escaped, escaped.status_code)


def test_downloads_serve_only_the_jobs_own_names(client: TestClient) -> None:
    job_id = post_photo(client).json()["jobId"]
    finished(client, job_id)
    ok = client.get(f"/api/v1/download/{job_id}/photo_mask.png")
    assert ok.status_code == 200
    again = client.get(
        f"/api/v1/download/{job_id}/photo_mask.png", headers={"If-None-Match": ok.headers["etag"]}
    )
    assert again.status_code == 304
    for name in ("other_mask.png", "photo_nobg.png", "photo_mask.webp", "photo_original.jpg"):
        assert_tools_error(client.get(f"/api/v1/download/{job_id}/{name}"), 404)
    assert_tools_error(client.get(f"/api/v1/download/{uuid.uuid4()}/photo_mask.png"), 404)
    assert_tools_error(client.get("/api/v1/download/not-a-job/photo_mask.png"), 404)
    native = submit(client).json()["id"]  # a native job is not a tools job
    wait_done(client, native)
    assert_tools_error(client.get(f"/api/v1/download/{uuid.UUID(native)}/x_mask.png"), 404)
    assert_tools_error(client.get(f"/api/v1/jobs/{uuid.UUID(native)}/progress"), 404)


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ("{not json", "JSON"),
        ('{"edgeRefine": 5}', "edgeRefine"),
        ('{"edgeRefine": "fine"}', "edgeRefine"),
        ('{"outputFormat": "gif"}', "outputFormat"),
        ('{"backgroundType": "plaid"}', "backgroundType"),
        ('{"blurIntensity": 150}', "blurIntensity"),
        ('{"shadowOpacity": -1, "shadowEnabled": true}', "shadowOpacity"),
        ('{"backgroundType": "color"}', "backgroundColor"),
        ('{"backgroundType": "color", "backgroundColor": "#ZZZ"}', "colo"),
        ('{"backgroundType": "image"}', "backgroundImage"),
        ('{"backgroundType": "color", "backgroundColor": "#fff", "blurEnabled": true}', "blur"),
        ('{"model": "rembg-nonexistent"}', "rembg-nonexistent"),
        ('{"gradientAngle": NaN}', "gradientAngle"),
    ],
)
def test_bad_settings_are_400(client: TestClient, settings: str, fragment: str) -> None:
    body = assert_tools_error(post_photo(client, settings), 400)
    assert fragment in body["error"] + body.get("details", ""), body


def test_bad_uploads_and_effects_requests(client: TestClient) -> None:
    no_file = client.post(REMOVE, data={"settings": SEED_SETTINGS})
    assert_tools_error(no_file, 400)
    not_image = post_photo(client, data=b"%PDF-1.4 definitely not an image")
    assert_tools_error(not_image, 400, "unsupported_format")
    assert_tools_error(client.post(REMOVE, json={"file": "x"}), 400)
    assert_tools_error(client.post(EFFECTS, files={"backgroundImage": ("b.png", png_bytes())}), 400)
    unknown = SEED_EFFECTS.format(job=uuid.uuid4())
    assert_tools_error(client.post(EFFECTS, files={"settings": (None, unknown)}), 404)
    job_id = post_photo(client).json()["jobId"]
    finished(client, job_id)
    wrong = json.dumps({"jobId": job_id, "filename": "other.jpg"})
    assert_tools_error(client.post(EFFECTS, files={"settings": (None, wrong)}), 404)
    no_name = json.dumps({"jobId": job_id})
    assert_tools_error(client.post(EFFECTS, files={"settings": (None, no_name)}), 400)
    assert_tools_error(client.get(f"/api/v1/jobs/{uuid.uuid4()}/progress"), 404)
    assert_tools_error(client.get("/api/v1/tools/nothing-here"), 404)


def test_keys_are_required_when_configured(make_app: MakeApp) -> None:
    with TestClient(make_app(api_keys=[KEY, OTHER_KEY]), raise_server_exceptions=False) as c:
        assert_tools_error(post_photo(c), 401, "unauthorized")  # the seed's curl has no key
        r = post_photo(c, headers={"x-api-key": KEY})
        assert r.status_code == 202
        job_id = r.json()["jobId"]
        assert_tools_error(c.get(f"/api/v1/jobs/{job_id}/progress"), 401)
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        assert_tools_error(c.get(f"/api/v1/jobs/{job_id}/progress", headers=other), 404)
        result = finished(c, job_id, **{"x-api-key": KEY})["result"]
        assert_tools_error(c.get(result["maskUrl"]), 401)
        assert_tools_error(c.get(result["maskUrl"], headers=other), 404)
        assert c.get(result["maskUrl"], headers={"x-api-key": KEY}).status_code == 200
        seed = {"settings": (None, SEED_EFFECTS.format(job=job_id))}
        assert_tools_error(c.post(EFFECTS, files=seed, headers=other), 404)
        assert c.post(EFFECTS, files=seed, headers={"x-api-key": KEY}).status_code == 200


def test_rate_limits_are_429_with_retry_after(make_app: MakeApp) -> None:
    app = make_app(api_keys=[KEY], rate_limit={"per_minute": 1, "burst": 1})
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"x-api-key": KEY}
        assert_tools_error(
            client.get(f"/api/v1/jobs/{uuid.uuid4()}/progress", headers=headers), 404
        )
        limited = client.get(f"/api/v1/jobs/{uuid.uuid4()}/progress", headers=headers)
        assert_tools_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1


def test_failed_and_canceled_jobs_end_the_stream_with_phase_failed(client: TestClient) -> None:
    truncated = png_bytes()[:120]  # a valid header: it fails in the worker's decode
    job_id = post_photo(client, data=truncated, name="cut.png").json()["jobId"]
    last = read_progress(client, job_id)[-1]
    assert last["phase"] == "failed" and isinstance(last["error"], str) and last["error"]
    service = client.app.state.cleancut.service  # type: ignore[attr-defined]
    big = png_bytes(np.full((1500, 2000, 3), 200, dtype=np.uint8))
    ids = [post_photo(client, data=big, name="big.png").json()["jobId"] for _ in range(3)]
    waiting = uuid.UUID(ids[-1]).hex
    if service.get(waiting).status is JobStatus.QUEUED:
        client.delete(f"/v1/jobs/{waiting}")
    last = read_progress(client, ids[-1])[-1]
    assert last["phase"] in ("failed", "complete")
    if last["phase"] == "failed":
        assert last["error"] == "Canceled"


def test_file_names() -> None:
    assert display_name("C:\\Users\\me\\photo.jpg", "jpg") == "photo.jpg"
    assert display_name("../../etc/passwd", "jpg") == "passwd"
    assert display_name("", "png") == "image.png"
    assert display_name("a\x00b.png", "png") == "ab.png"
    assert stem("photo.jpg") == "photo"
    assert stem("archive.tar.gz") == "archive.tar"
    assert stem(".hidden") == "hidden"
    assert stem("ünï cødé.png") == "n_c_d"
    assert stem("...") == "image"


def test_the_routes_are_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"][REMOVE]["post"]
    assert post["tags"] == ["compat: tools"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"file", "settings"}
    settings = form["properties"]["settings"]["properties"]
    assert settings["edgeRefine"]["anyOf"][0]["maximum"] == 3
    for path in (EFFECTS, "/api/v1/jobs/{job_id}/progress", "/api/v1/download/{job_id}/{filename}"):
        assert path in spec["paths"], path


# --------------------------------------------------------------------------- end to end


@pytest.mark.model
def test_a_real_photo_through_a_running_server(tmp_path: Path) -> None:
    """The seed's flow with plain httpx against ``cleancut serve`` and the real model."""
    folder = require_shared() / "people-removebg"
    photo = (folder / "images" / "p101.jpg").read_bytes()
    truth = np.asarray(Image.open(folder / "masks" / "p101.png").convert("L")) > 127
    server = ServerProcess(tmp_path / "data", {"api_keys": KEY})
    server.start()
    try:
        server.wait_ready()
        auth = {"x-api-key": KEY}
        with httpx.Client(timeout=60, headers=auth) as http:
            files = {"file": ("photo.jpg", photo, "image/jpeg")}
            accepted = http.post(
                f"{server.url}{REMOVE}", files=files, data={"settings": SEED_SETTINGS}
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["jobId"]
            url = f"{server.url}/api/v1/jobs/{job_id}/progress"
            events = list(sse_events(http, url))
            assert {name for name, _ in events} == {"progress"}
            result = events[-1][1]["result"]
            assert result["filename"] == "photo.jpg"
            mask = http.get(f"{server.url}{result['maskUrl']}").content
            effects = {"settings": (None, SEED_EFFECTS.format(job=job_id))}
            done = http.post(f"{server.url}{EFFECTS}", files=effects)
            assert done.status_code == 200, done.text
            nobg = http.get(f"{server.url}{done.json()['downloadUrl']}").content
    finally:
        assert server.stop()
    with Image.open(io.BytesIO(mask)) as img:
        alpha = np.asarray(img.getchannel("A"))
    found = alpha > 127
    assert (found & truth).sum() / max(1, (found | truth).sum()) > 0.85
    with Image.open(io.BytesIO(nobg)) as img:
        assert img.size == (alpha.shape[1], alpha.shape[0])
        assert tuple(np.asarray(img.convert("RGB"))[0, 0]) == (255, 85, 0)
