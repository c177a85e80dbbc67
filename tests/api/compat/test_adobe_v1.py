"""Adobe Photoshop API v1 (Sensei): the seeds' curl bodies against the real app (tiny model),
every documented status field, the PUT to a pre-signed URL, our own storage as input and
output, and Adobe's error envelope. One end-to-end run against ``cleancut serve`` with the real
model follows the docs with plain ``httpx``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from cleancut.api.compat import adobe_common, adobe_v1
from cleancut.jobs.model import JobStatus
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
from tests.api.conftest import KEY, MakeApp, png_bytes, submit, wait_done
from tests.conftest import require_shared

HEADERS = {"Authorization": "Bearer an-ims-access-token", "x-api-key": KEY}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ERROR_KEYS = {"type", "code", "title", "error_code", "details"}


@pytest.fixture
def store() -> Iterator[Bucket]:
    with bucket() as b:
        b.files["/in/Example.png?X-Amz-Signature=get"] = (png_bytes(), "image/png")
        yield b


def seed_001_body(get_url: str, put_url: str) -> dict[str, Any]:
    """Seed 001's curl body, as written, with only the placeholders filled in."""
    return {
        "input": {"storage": "external", "href": get_url},
        "output": {"storage": "external", "href": put_url, "mask": {"format": "soft"}},
    }


def poll(client: TestClient, href: str, headers: dict[str, str] = HEADERS) -> dict[str, Any]:
    """Poll a status href until the job is settled (a generous bound, not a timing check)."""
    deadline = time.monotonic() + 60
    while True:
        r = client.get(href, headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def accepted(response: Any) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"_links"} and set(body["_links"]) == {"self"}
    href: str = body["_links"]["self"]["href"]
    assert re.fullmatch(rf"http://testserver/sensei/status/{UUID}", href), href
    return href


def check_status(body: dict[str, Any], href: str) -> None:
    assert set(body) <= {"jobID", "status", "created", "modified", "input", "output", "_links"} | {
        "errors"
    }
    assert {"jobID", "status", "created", "modified", "input", "output", "_links"} <= set(body)
    assert body["jobID"] == href.rsplit("/", 1)[1]
    assert body["status"] in STATES
    assert STAMP.match(body["created"]) and STAMP.match(body["modified"])
    assert body["modified"] >= body["created"]
    assert isinstance(body["input"], str)
    assert isinstance(body["output"], dict)
    assert body["_links"] == {"self": {"href": href}}
    assert ("errors" in body) == (body["status"] == "failed")


def assert_adobe_error(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == str(status)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["error_code"], str)
    assert isinstance(body["details"], list) and body["details"]
    assert all(isinstance(d["reason"], str) for d in body["details"])
    if kind is not None:
        assert body["type"] == kind, body
    return body


# -- the seeds' examples ------------------------------------------------------------------------


def test_seed_001_cutout_puts_an_rgba_png_and_the_status_is_as_documented(
    api: TestClient, store: Bucket
) -> None:
    get_url = store.url("/in/Example.png?X-Amz-Signature=get")
    put_url = store.url("/out/cutout.png?X-Amz-Signature=put")
    headers = {**HEADERS, "Content-Type": "application/json"}
    href = accepted(
        api.post("/sensei/cutout", json=seed_001_body(get_url, put_url), headers=headers)
    )
    status = poll(api, href)
    check_status(status, href)
    assert status["status"] == "succeeded", status
    # Adobe's ids are UUIDs; ours are the same 128 bits, so either spelling finds the job
    plain = href.rsplit("/", 1)[1].replace("-", "")
    assert api.get(f"/sensei/status/{plain}", headers=HEADERS).json()["jobID"] == status["jobID"]
    assert status["input"] == get_url
    assert status["output"] == {"storage": "external", "href": put_url, "mask": {"format": "soft"}}
    body, content_type = store.puts["/out/cutout.png?X-Amz-Signature=put"]
    assert content_type == "image/png"
    out = image(body)
    assert (out.format, out.mode, out.size) == ("PNG", "RGBA", image(png_bytes()).size)


def test_seed_000_v1_payload_binary_rgb_overwrite(api: TestClient, store: Bucket) -> None:
    """Seed 000's "V1 Payload" (x-gw-ims-org-id, no Authorization header)."""
    get_url = store.url("/in/Example.png?X-Amz-Signature=get")
    put_url = store.url("/out/rgb.png")
    body = {
        "input": {"href": get_url, "storage": "external"},
        "output": {
            "href": put_url,
            "storage": "external",
            "mask": {"format": "binary"},
            "color": {"space": "rgb"},
            "overwrite": True,
        },
    }
    headers = {"Content-Type": "application/json", "x-api-key": KEY, "x-gw-ims-org-id": "string"}
    href = accepted(api.post("/sensei/cutout", json=body, headers=headers))
    status = poll(api, href, {"x-api-key": KEY})
    check_status(status, href)
    assert status["status"] == "succeeded", status
    assert status["output"] == body["output"]
    out = image(store.puts["/out/rgb.png"][0])
    assert out.mode == "RGB"  # color.space rgb: no alpha channel


@pytest.mark.parametrize("fmt", ["soft", "binary"])
def test_mask_endpoint_puts_a_grayscale_mask(api: TestClient, store: Bucket, fmt: str) -> None:
    body = seed_001_body(store.url("/in/Example.png?X-Amz-Signature=get"), store.url("/m.png"))
    body["output"]["mask"]["format"] = fmt
    href = accepted(api.post("/sensei/mask", json=body, headers=HEADERS))
    status = poll(api, href)
    assert status["status"] == "succeeded", status
    assert status["output"]["mask"] == {"format": fmt}
    mask = image(store.puts["/m.png"][0])
    assert mask.mode == "L"
    values = set(np.unique(np.asarray(mask)).tolist())
    if fmt == "binary":
        assert values <= {0, 255}
    else:
        assert len(values) > 2  # the tiny model's matte has soft values


# -- our own storage as input and output --------------------------------------------------------


def test_internal_storage_in_and_out_with_signed_downloads(api: TestClient) -> None:
    native = submit(api, headers={"x-api-key": KEY}).json()["id"]
    assert wait_done(api, native, {"x-api-key": KEY})["status"] == "succeeded"
    body = {
        "input": {"storage": "internal", "href": f"/v1/jobs/{native}/original"},
        "output": {"storage": "internal"},
    }
    href = accepted(api.post("/sensei/cutout", json=body, headers=HEADERS))
    status = poll(api, href)
    check_status(status, href)
    assert status["status"] == "succeeded", status
    assert status["input"] == f"/v1/jobs/{native}/original"
    output = status["output"]
    assert output["storage"] == "internal"
    assert output["href"].startswith(f"http://testserver/sensei/outputs/{status['jobID']}?")
    got = api.get(output["href"])  # no key: the signature is the permission
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert image(got.content).mode == "RGBA"
    tampered = output["href"][:-4] + ("0000" if not output["href"].endswith("0000") else "1111")
    assert_adobe_error(api.get(tampered), 403, "Forbidden")
    # chain: the signed output URL of this server is an internal input (absolute form too)
    chained = {
        "input": {"storage": "external", "href": output["href"]},
        "output": {"storage": "internal"},
    }
    again = poll(api, accepted(api.post("/sensei/mask", json=chained, headers=HEADERS)))
    assert again["status"] == "succeeded", again
    mask = api.get(again["output"]["href"])
    assert image(mask.content).mode == "L"


def test_someone_elses_job_is_not_an_input(make_app: MakeApp) -> None:
    other = "other-key-0123456789"
    app = make_app(api_keys=(KEY, other))
    with TestClient(app, raise_server_exceptions=False) as c:
        theirs = submit(c, headers={"x-api-key": other}).json()["id"]
        body = {
            "input": {"storage": "internal", "href": f"/v1/jobs/{theirs}/original"},
            "output": {"storage": "internal"},
        }
        assert_adobe_error(c.post("/sensei/cutout", json=body, headers=HEADERS), 404)


# -- failures shown in the status ---------------------------------------------------------------


def test_a_refused_put_fails_the_job_with_output_upload_failed(
    api: TestClient, store: Bucket
) -> None:
    store.refuse["/out/denied.png"] = 403
    body = seed_001_body(
        store.url("/in/Example.png?X-Amz-Signature=get"), store.url("/out/denied.png")
    )
    href = accepted(api.post("/sensei/cutout", json=body, headers=HEADERS))
    status = poll(api, href)
    check_status(status, href)
    assert status["status"] == "failed"
    (error,) = status["errors"]
    assert set(error) == ERROR_KEYS
    assert (error["error_code"], error["code"], error["type"]) == (
        "output_upload_failed",
        "409",
        "UnableToUploadAsset",
    )
    assert "403" in error["title"]
    assert error["details"] == [{"name": "output.href", "reason": error["title"]}]


def test_an_input_that_cannot_be_fetched_fails_the_job(api: TestClient, store: Bucket) -> None:
    body = seed_001_body(store.url("/in/missing.png"), store.url("/out/never.png"))
    status = poll(api, accepted(api.post("/sensei/cutout", json=body, headers=HEADERS)))
    assert status["status"] == "failed"
    (error,) = status["errors"]
    assert (error["error_code"], error["code"]) == ("url_fetch_failed", "410")
    assert error["details"][0]["name"] == "input.href"
    assert store.puts == {}


def test_every_job_state_maps_to_an_adobe_state(api: TestClient, tmp_path: Path) -> None:
    job_id = submit(api, headers={"x-api-key": KEY}).json()["id"]
    job = api.app.state.cleancut.service.wait(job_id, 30)  # type: ignore[attr-defined]
    scope = {"type": "http", "scheme": "http", "server": ("h", 80), "path": "/", "headers": []}
    signer = adobe_common.UrlSigner(tmp_path / "key")
    expected = {
        JobStatus.QUEUED: "pending",
        JobStatus.PROCESSING: "running",
        JobStatus.SUCCEEDED: "succeeded",
        JobStatus.FAILED: "failed",
        JobStatus.CANCELED: "failed",
    }
    for ours, theirs in expected.items():
        body = adobe_v1.status_body(Request(scope), replace(job, status=ours), signer)
        assert body.status == theirs
        assert (body.errors is not None) == (theirs == "failed")
    assert expected == adobe_common.STATES


# -- the error envelope -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"output": {"storage": "internal"}}, "input"),
        ({"input": {"href": "https://x.example/a.png", "storage": "adobe"}}, "input.storage"),
        (
            {
                "input": {"href": "https://x.example/a.png", "storage": "external"},
                "output": {
                    "href": "https://x.example/o",
                    "storage": "external",
                    "mask": {"format": "hard"},
                },
            },
            "output.mask.format",
        ),
        (
            {"input": {"href": "https://x.example/a.png"}, "output": {"storage": "external"}},
            "output",
        ),
    ],
)
def test_invalid_bodies_are_input_validation_errors(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    body.setdefault("output", {"storage": "internal"})
    err = assert_adobe_error(
        api.post("/sensei/cutout", json=body, headers=HEADERS), 400, "InputValidationError"
    )
    assert err["error_code"] == "validation_error"
    assert err["details"][0]["name"] == field


def test_other_refusals_use_the_same_envelope(make_app: MakeApp) -> None:
    app = make_app(api_keys=(KEY,), rate_limit={"per_minute": 1, "burst": 2})
    ok = {
        "input": {"href": "http://127.0.0.1:9/a.png", "storage": "external"},
        "output": {"storage": "internal"},
    }
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_adobe_error(c.post("/sensei/cutout", json=ok), 401, "Unauthorized")
        wrong = {"Authorization": "Bearer token", "x-api-key": "not-a-key"}
        assert_adobe_error(c.post("/sensei/cutout", json=ok, headers=wrong), 401)
        # private networks are off here: refused at validation, before anything is dialled
        forbidden = assert_adobe_error(c.post("/sensei/cutout", json=ok, headers=HEADERS), 400)
        assert forbidden["error_code"] == "url_forbidden"
        answers = [c.get("/sensei/status/abc", headers=HEADERS) for _ in range(3)]
        limited = answers[-1]  # the burst of 2 is spent by now
        assert_adobe_error(limited, 429, "TooManyRequests")
        assert int(limited.headers["Retry-After"]) >= 1


def test_not_found_bad_json_and_unknown_paths(api: TestClient) -> None:
    assert_adobe_error(
        api.get("/sensei/status/" + "0" * 32, headers=HEADERS), 404, "ResourceNotFound"
    )
    bad = api.post(
        "/sensei/cutout",
        content=b"{not json",
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert_adobe_error(bad, 400, "InputValidationError")
    assert_adobe_error(api.get("/sensei/nothing-here", headers=HEADERS), 404)
    assert_adobe_error(api.get("/sensei/cutout", headers=HEADERS), 405, "MethodNotAllowed")
    forged = api.get(f"/sensei/outputs/{'0' * 32}?expires=1&signature=00")
    assert_adobe_error(forged, 403, "Forbidden")  # expired (and not signed by us)


# -- end to end: a real server, the real model, plain httpx as the docs use it ------------------


@pytest.mark.model
@pytest.mark.slow
def test_end_to_end_with_the_real_model(tmp_path: Path) -> None:
    photo = require_shared() / "people-removebg" / "images" / "p101.jpg"
    files = {"/in/p101.jpg?sig=1": (photo.read_bytes(), "image/jpeg")}
    with served(tmp_path, KEY, files) as b, httpx.Client(timeout=60) as http:
        assert b.server is not None
        body = seed_001_body(b.url("/in/p101.jpg?sig=1"), b.url("/out/p101.png?sig=2"))
        r = http.post(f"{b.server.url}/sensei/cutout", json=body, headers=HEADERS)
        assert r.status_code == 202, r.text
        status = poll_status(http, r.json()["_links"]["self"]["href"], HEADERS)
    assert status["status"] == "succeeded", status
    assert_cutout_of(b.puts["/out/p101.png?sig=2"][0], photo)
