"""Adobe Photoshop API v2: seed 000's V2 curl example as written (host, key and a loopback image
URL changed) against the real app with the tiny model, every documented status field, the
option mapping, and Adobe's error envelope ``{error_code, message, errors[]}``. One end-to-end
run against ``cleancut serve`` with the real model uses plain ``httpx`` as the docs do."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from cleancut.api.compat import adobe_common, adobe_v2
from tests.api.compat.adobe_servers import (
    STAMP,
    STATES,
    Bucket,
    assert_cutout_of,
    bucket,
    image,
    poll_status,
    served,
)
from tests.api.conftest import KEY, MakeApp, png_bytes, submit
from tests.conftest import require_shared


def seed_v2_body(url: str) -> dict[str, Any]:
    """Seed 000's V2 payload exactly, with the "string" placeholder URL filled in."""
    return {
        "image": {"source": {"url": url}},
        "mode": "cutout",
        "output": {"mediaType": "image/jpeg"},
        "trim": False,
        "backgroundColor": {"red": 255, "green": 255, "blue": 255, "alpha": 1},
        "colorDecontamination": 1,
    }


#: The seed's headers: ``Authorization: string`` is not a Bearer credential; the key goes in
#: x-api-key.
SEED_HEADERS = {"Authorization": "string", "Content-Type": "application/json", "x-api-key": KEY}


@pytest.fixture
def store() -> Iterator[Bucket]:
    with bucket() as b:
        b.files["/in/photo.png?X-Amz-Signature=1"] = (png_bytes(), "image/png")
        yield b


def accepted(response: Any) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"jobId", "statusUrl"}
    assert body["statusUrl"] == f"http://testserver/v2/status/{body['jobId']}"
    url: str = body["statusUrl"]
    return url


def poll(client: TestClient, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = client.get(url, headers={"x-api-key": KEY})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        check_status(body)
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def check_status(body: dict[str, Any]) -> None:
    base = {"jobId", "status", "createdTime", "modifiedTime"}
    assert base <= set(body)
    assert isinstance(body["jobId"], str) and body["status"] in STATES
    assert STAMP.match(body["createdTime"]) and STAMP.match(body["modifiedTime"])
    if body["status"] == "succeeded":
        assert set(body) == base | {"result"}
        assert set(body["result"]) == {"outputs"} and len(body["result"]["outputs"]) == 1
        (out,) = body["result"]["outputs"]
        assert set(out) == {"destination", "mediaType"} and set(out["destination"]) == {"url"}
    elif body["status"] == "failed":
        assert set(body) == base | {"errorDetails", "error_code", "message"}
        for item in body["errorDetails"]:
            assert set(item) == {"errorCode", "message"}
    else:
        assert set(body) == base


def assert_adobe_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_code", "message", "errors"}, body
    assert isinstance(body["error_code"], str) and isinstance(body["message"], str)
    assert body["message"] and body["errors"]
    for item in body["errors"]:
        assert set(item) <= {"code", "message", "field"} and {"code", "message"} <= set(item)
    if code is not None:
        assert body["error_code"] == code, body
    return body


# -- the seed's example -------------------------------------------------------------------------


def test_seed_v2_curl_example_as_written(api: TestClient, store: Bucket) -> None:
    body = seed_v2_body(store.url("/in/photo.png?X-Amz-Signature=1"))
    url = accepted(api.post("/v2/remove-background", json=body, headers=SEED_HEADERS))
    status = poll(api, url)
    assert status["status"] == "succeeded", status
    (out,) = status["result"]["outputs"]
    assert out["mediaType"] == "image/jpeg"
    assert out["destination"]["url"].startswith(f"http://testserver/v2/outputs/{status['jobId']}?")
    got = api.get(out["destination"]["url"])  # a pre-signed URL: no key needed
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    jpeg = image(got.content)
    assert jpeg.format == "JPEG" and jpeg.size == image(png_bytes()).size
    corner = np.asarray(jpeg.convert("RGB"))[0, 0]
    assert (corner > 240).all()  # the background became the requested white
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", status["jobId"])
    service = api.app.state.cleancut.service  # type: ignore[attr-defined]
    job = service.get(uuid.UUID(status["jobId"]).hex)
    assert job.options.refine.decontaminate == 1.0  # colorDecontamination
    assert job.options.background.kind == "color"


@pytest.mark.parametrize(
    ("media_type", "fmt"), [("image/png", "PNG"), ("image/webp", "WEBP"), ("image/jpeg", "JPEG")]
)
def test_mask_mode_in_each_media_type(
    api: TestClient, store: Bucket, media_type: str, fmt: str
) -> None:
    body = {
        "image": {"source": {"url": store.url("/in/photo.png?X-Amz-Signature=1")}},
        "mode": "mask",
        "output": {"mediaType": media_type},
    }
    status = poll(api, accepted(api.post("/v2/remove-background", json=body, headers=SEED_HEADERS)))
    assert status["status"] == "succeeded", status
    (out,) = status["result"]["outputs"]
    assert out["mediaType"] == media_type
    mask = image(api.get(out["destination"]["url"]).content)
    assert mask.format == fmt
    if fmt == "WEBP":  # WebP has no gray mode: three equal channels
        channels = np.asarray(mask.convert("RGB"))
        assert (channels == channels[..., :1]).all()
    else:
        assert mask.mode == "L"


def test_defaults_and_trim(api: TestClient, store: Bucket) -> None:
    src = store.url("/in/photo.png?X-Amz-Signature=1")
    plain = poll(
        api,
        accepted(
            api.post(
                "/v2/remove-background",
                json={"image": {"source": {"url": src}}},
                headers=SEED_HEADERS,
            )
        ),
    )
    (out,) = plain["result"]["outputs"]
    assert out["mediaType"] == "image/png"  # the default
    full = image(api.get(out["destination"]["url"]).content)
    assert full.mode == "RGBA"
    body = {"image": {"source": {"url": src}}, "trim": True}
    trimmed = poll(
        api, accepted(api.post("/v2/remove-background", json=body, headers=SEED_HEADERS))
    )
    small = image(api.get(trimmed["result"]["outputs"][0]["destination"]["url"]).content)
    assert small.size[0] < full.size[0] and small.size[1] < full.size[1]


def test_option_mapping() -> None:
    class Ctx:
        @staticmethod
        def core_options(public: Any) -> Any:
            return public

    body = adobe_v2.RemoveBackgroundRequest.model_validate(
        {
            "image": {"source": {"url": "https://x.example/a.png"}},
            "mode": "mask",
            "output": {"mediaType": "image/webp"},
            "trim": True,
            "backgroundColor": {"red": 10, "green": 20, "blue": 30, "alpha": 0.5},
            "colorDecontamination": 0.25,
        }
    )
    public = adobe_v2.to_options(Ctx(), body)  # type: ignore[arg-type]
    assert (public.format, public.mode, public.trim) == ("webp", "mask", True)
    assert public.background.type == "color"
    assert public.background.color.model_dump() == {"r": 10, "g": 20, "b": 30, "a": 0.5}
    assert public.jpeg_background.model_dump() == {"r": 10, "g": 20, "b": 30, "a": 255}
    assert public.refine.decontaminate == 0.25 and public.refine.level is None


def test_our_own_result_is_an_input(api: TestClient) -> None:
    native = submit(api, headers={"x-api-key": KEY}).json()["id"]
    body = {"image": {"source": {"url": f"http://testserver/v1/jobs/{native}/original"}}}
    status = poll(api, accepted(api.post("/v2/remove-background", json=body, headers=SEED_HEADERS)))
    assert status["status"] == "succeeded", status
    chained = {"image": {"source": {"url": status["result"]["outputs"][0]["destination"]["url"]}}}
    again = poll(
        api, accepted(api.post("/v2/remove-background", json=chained, headers=SEED_HEADERS))
    )
    assert again["status"] == "succeeded", again


def test_a_failed_job_lists_error_details(api: TestClient, store: Bucket) -> None:
    body = seed_v2_body(store.url("/in/missing.png"))
    status = poll(api, accepted(api.post("/v2/remove-background", json=body, headers=SEED_HEADERS)))
    assert status["status"] == "failed"
    assert status["error_code"] == "url_fetch_failed"
    assert status["errorDetails"] == [
        {"errorCode": "url_fetch_failed", "message": status["message"]}
    ]


def test_every_job_state_maps_to_an_adobe_state(api: TestClient, tmp_path: Path) -> None:
    job_id = submit(api, headers={"x-api-key": KEY}).json()["id"]
    job = api.app.state.cleancut.service.wait(job_id, 30)  # type: ignore[attr-defined]
    scope = {"type": "http", "scheme": "http", "server": ("h", 80), "path": "/", "headers": []}
    signer = adobe_common.UrlSigner(tmp_path / "key")
    for ours, theirs in adobe_common.STATES.items():
        body = adobe_v2.status_body(Request(scope), replace(job, status=ours), signer)
        assert body.status == theirs
        check_status(body.model_dump(exclude_none=True))


# -- the error envelope -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": None}, "image"),
        ({"mode": "silhouette"}, "mode"),
        ({"output": {"mediaType": "image/gif"}}, "output.mediaType"),
        ({"colorDecontamination": 2}, "colorDecontamination"),
        (
            {"backgroundColor": {"red": 300, "green": 0, "blue": 0, "alpha": 1}},
            "backgroundColor.red",
        ),
        ({"backgroundColor": {"red": 0, "green": 0, "blue": 0}}, "backgroundColor.alpha"),
    ],
)
def test_invalid_bodies(api: TestClient, change: dict[str, Any], field: str) -> None:
    body = {**seed_v2_body("https://x.example/a.png"), **change}
    body = {k: v for k, v in body.items() if v is not None}
    err = assert_adobe_error(
        api.post("/v2/remove-background", json=body, headers=SEED_HEADERS), 400
    )
    assert err["error_code"] == "validation_error"
    assert err["errors"][0]["field"] == field


def test_other_refusals_use_the_same_envelope(make_app: MakeApp) -> None:
    app = make_app(api_keys=(KEY,), rate_limit={"per_minute": 1, "burst": 2})
    body = seed_v2_body("http://169.254.169.254/latest/meta-data")
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_adobe_error(c.post("/v2/remove-background", json=body), 401, "unauthorized")
        bad_key = {**SEED_HEADERS, "x-api-key": "nope"}
        assert_adobe_error(c.post("/v2/remove-background", json=body, headers=bad_key), 401)
        # a metadata address: refused at validation, nothing is dialled
        err = assert_adobe_error(
            c.post("/v2/remove-background", json=body, headers=SEED_HEADERS), 400
        )
        assert err["errors"][0]["code"] == "url_forbidden"
        answers = [c.get(f"/v2/status/{'0' * 32}", headers=SEED_HEADERS) for _ in range(3)]
        assert_adobe_error(answers[0], 404, "job_not_found")
        assert_adobe_error(answers[-1], 429, "rate_limited")
        assert int(answers[-1].headers["Retry-After"]) >= 1


def test_bad_json_unknown_paths_and_forged_downloads(api: TestClient) -> None:
    bad = api.post("/v2/remove-background", content=b"[", headers=SEED_HEADERS)
    assert_adobe_error(bad, 400, "invalid_input")
    assert_adobe_error(api.get("/v2/status/", headers=SEED_HEADERS), 404)
    forged = api.get(f"/v2/outputs/{'0' * 32}?expires=99999999999&signature=00")
    assert_adobe_error(forged, 403, "access_error")


# -- end to end: a real server, the real model, plain httpx as the docs use it ------------------


@pytest.mark.model
@pytest.mark.slow
def test_end_to_end_with_the_real_model(tmp_path: Path) -> None:
    photo = require_shared() / "people-removebg" / "images" / "p101.jpg"
    files = {"/p101.jpg": (photo.read_bytes(), "image/jpeg")}
    with served(tmp_path, KEY, files) as b, httpx.Client(timeout=60) as http:
        assert b.server is not None
        body = {**seed_v2_body(b.url("/p101.jpg")), "output": {"mediaType": "image/png"}}
        body["backgroundColor"] = {"red": 0, "green": 0, "blue": 0, "alpha": 0}
        r = http.post(f"{b.server.url}/v2/remove-background", json=body, headers=SEED_HEADERS)
        assert r.status_code == 202, r.text
        status = poll_status(http, r.json()["statusUrl"], SEED_HEADERS)
        assert status["status"] == "succeeded", status
        download = httpx.get(status["result"]["outputs"][0]["destination"]["url"])
    assert download.status_code == 200
    assert_cutout_of(download.content, photo)
