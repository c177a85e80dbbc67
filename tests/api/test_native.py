"""The /v1 job routes against the real app and service (tiny model, SQLite in a temp folder)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import MakeApp, assert_error, png_bytes, submit, wait_done


def test_submit_answers_202_with_the_job_and_it_succeeds(client: TestClient) -> None:
    r = submit(client)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "processing", "succeeded")
    assert r.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["job"]
    assert job["links"]["events"].endswith("/events")
    assert "original" in job["results"]
    done = wait_done(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["percent"] == 100
    assert done["error"] is None
    assert {"cutout", "mask", "original"} <= set(done["results"])
    assert {"decode", "inference", "encode", "total"} <= set(done["timings"])
    assert done["links"]["result"] == f"/v1/jobs/{job['id']}/result"
    cutout = Image.open(io.BytesIO(client.get(done["links"]["result"]).content))
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (200, 150))


def test_options_reach_the_pipeline(client: TestClient) -> None:
    job = submit(
        client, options={"format": "webp", "background": {"type": "color", "color": "red"}}
    )
    done = wait_done(client, job.json()["id"])
    assert done["results"]["cutout"]["media_type"] == "image/webp"
    img = Image.open(io.BytesIO(client.get(done["links"]["result"]).content)).convert("RGBA")
    assert img.getpixel((5, 5)) == (255, 0, 0, 255)  # the dark background became red
    mask = wait_done(client, submit(client, options={"mode": "mask"}).json()["id"])
    body = client.get(mask["links"]["result"]).content
    assert Image.open(io.BytesIO(body)).mode == "L"


def test_list_jobs_newest_first(client: TestClient) -> None:
    ids = [submit(client).json()["id"] for _ in range(3)]
    listed = client.get("/v1/jobs", params={"limit": 2}).json()["jobs"]
    assert [j["id"] for j in listed] == ids[::-1][:2]
    assert_error(client.get("/v1/jobs", params={"limit": 0}), 422, "validation_error")


def test_idempotency_key_returns_the_same_job(client: TestClient) -> None:
    first = submit(client, headers={"Idempotency-Key": "order-42"}).json()
    again = submit(client, headers={"Idempotency-Key": "order-42"})
    assert again.status_code == 202
    assert again.json()["id"] == first["id"]
    other = submit(client, headers={"Idempotency-Key": "order-43"}).json()
    assert other["id"] != first["id"]
    assert len(client.get("/v1/jobs").json()["jobs"]) == 2


def test_cancel_a_queued_job_then_conflicts(make_app: MakeApp) -> None:
    with TestClient(make_app(workers=1), raise_server_exceptions=False) as client:
        big = png_bytes(np.full((1200, 1600, 3), 200, dtype=np.uint8))
        ids = [submit(client, big).json()["id"] for _ in range(4)]
        last = ids[-1]  # one worker: the last of four is still waiting
        r = client.delete(f"/v1/jobs/{last}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "canceled"
        assert r.json()["results"] == {}
        assert_error(client.delete(f"/v1/jobs/{last}"), 409, "job_conflict")
        assert_error(client.get(f"/v1/jobs/{last}/original"), 404, "result_not_found")
        done = wait_done(client, ids[0])
        assert done["status"] == "succeeded"
        assert_error(client.delete(f"/v1/jobs/{ids[0]}"), 409, "job_conflict")


def test_effects_make_a_new_job_from_the_stored_matte(client: TestClient) -> None:
    parent = wait_done(client, submit(client).json()["id"])
    r = client.post(
        f"/v1/jobs/{parent['id']}/effects",
        json={"options": {"background": {"type": "color", "color": "#00ff00"}, "format": "jpeg"}},
    )
    assert r.status_code == 201, r.text
    child = r.json()
    assert r.headers["location"] == f"/v1/jobs/{child['id']}"
    assert child["id"] != parent["id"]
    assert child["parent_id"] == parent["id"]
    assert child["status"] == "succeeded"
    assert child["results"]["cutout"]["media_type"] == "image/jpeg"
    img = Image.open(io.BytesIO(client.get(child["links"]["result"]).content))
    r_, g, b = img.convert("RGB").getpixel((5, 5))
    assert g > 200 > max(r_, b)
    # the parent is untouched
    assert client.get(f"/v1/jobs/{parent['id']}").json()["results"] == parent["results"]


def test_effects_refusals(client: TestClient) -> None:
    parent = wait_done(client, submit(client).json()["id"])
    url = f"/v1/jobs/{parent['id']}/effects"
    assert_error(client.post(url, json={"options": {"model": "nope"}}), 404, "model_not_found")
    err = assert_error(client.post(url, json={"options": {"quality": 500}}), 422)
    assert err["field"] == "options.quality"
    assert_error(client.post(url, content=b"{", headers={"content-type": "application/json"}), 400)
    assert_error(client.post("/v1/jobs/0000/effects", json={}), 404, "job_not_found")


def test_effects_need_a_succeeded_parent(make_app: MakeApp) -> None:
    with TestClient(make_app(workers=1), raise_server_exceptions=False) as client:
        big = png_bytes(np.full((1200, 1600, 3), 200, dtype=np.uint8))
        ids = [submit(client, big).json()["id"] for _ in range(3)]
        client.delete(f"/v1/jobs/{ids[-1]}")
        assert_error(client.post(f"/v1/jobs/{ids[-1]}/effects", json={}), 409, "job_conflict")


def test_json_url_job_from_a_loopback_server(make_app: MakeApp, image_server: str) -> None:
    with TestClient(make_app(allow_private_networks=True)) as client:
        r = client.post("/v1/jobs", json={"url": f"{image_server}/square.png"})
        assert r.status_code == 202, r.text
        assert r.json()["source_url"] == f"{image_server}/square.png"
        done = wait_done(client, r.json()["id"])
        assert done["status"] == "succeeded", done
        assert "original" in done["results"]
        missing = wait_done(
            client, client.post("/v1/jobs", json={"url": f"{image_server}/nope"}).json()["id"]
        )
        assert missing["status"] == "failed"
        assert missing["error"]["code"] == "url_fetch_failed"


# Literal addresses and blocked names only: validation refuses them before any DNS or dialling.
SSRF_URLS = [
    "http://127.0.0.1/x.png",
    "http://localhost/x.png",
    "http://[::1]/x.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://0x7f000001/x.png",
    "http://2130706433/x.png",
    "http://0177.0.0.1/x.png",
    "http://10.0.0.1/x.png",
    "http://192.168.1.1/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://100.64.0.1/x.png",
    "http://0.0.0.0/x.png",
    "file:///etc/passwd",
    "gopher://127.0.0.1/",
    "http://user:pw@127.0.0.1/x.png",
]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_ssrf_targets_are_refused_at_submit(client: TestClient, url: str) -> None:
    err = assert_error(client.post("/v1/jobs", json={"url": url}), 400)
    assert err["code"] in ("url_forbidden", "invalid_url")
    assert client.get("/v1/jobs").json()["jobs"] == []  # nothing was stored


def test_webhooks_are_validated_and_their_secret_shown_once(client: TestClient) -> None:
    files = {"file": ("a.png", png_bytes(), "image/png")}
    bad = {"webhook": json.dumps({"url": "http://example.com/hook"})}
    assert_error(client.post("/v1/jobs", files=files, data=bad), 400)  # webhooks: https only
    meta = {"webhook": json.dumps({"url": "https://169.254.169.254/hook"})}
    assert_error(client.post("/v1/jobs", files=files, data=meta), 400, "url_forbidden")
    good = {"webhook": json.dumps({"url": "https://hooks.example/cleancut"})}
    r = client.post("/v1/jobs", files=files, data=good)
    assert r.status_code == 202, r.text
    secret = r.json()["webhook"]["secret"]
    assert secret and len(secret) >= 32
    again = client.get(f"/v1/jobs/{r.json()['id']}").json()
    assert again["webhook"] == {"url": "https://hooks.example/cleancut", "secret": None}
    own = {"webhook": json.dumps({"url": "https://hooks.example/x", "secret": "x" * 20})}
    mine = client.post("/v1/jobs", files=files, data=own).json()
    assert mine["webhook"]["secret"] is None  # the client knows its own secret
