"""The SSE route in-process: the first event, keep-alive comments, cancellation, ownership."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from cleancut.api.sse import event_payload, frame
from cleancut.jobs.model import JobEvent, JobStatus
from tests.api.conftest import MakeApp, assert_error, png_bytes, submit, wait_done


def read_events(
    client: TestClient, url: str, on_comment: object = None
) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        name, data = "", ""
        for line in r.iter_lines():
            if line.startswith(":") and callable(on_comment):
                on_comment(line)
            elif line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
            elif not line and data:
                events.append((name, json.loads(data)))
                data = ""
    return events


def test_keep_alives_then_cancel_ends_the_stream(make_app: MakeApp) -> None:
    with TestClient(make_app(workers=1), raise_server_exceptions=False) as client:
        big = png_bytes(np.full((1500, 2000, 3), 200, dtype=np.uint8))
        # Enough work ahead that the last job waits past a keep-alive (0.2 s) even on a
        # fast machine; three jobs of this photo once took less than that.
        ids = [submit(client, big).json()["id"] for _ in range(9)]
        waiting = ids[-1]
        canceled = threading.Event()

        def on_comment(line: str) -> None:
            assert line == ": keep-alive"
            if not canceled.is_set():
                canceled.set()
                assert client.delete(f"/v1/jobs/{waiting}").status_code in (200, 409)

        events = read_events(client, f"/v1/jobs/{waiting}/events", on_comment)
        assert canceled.is_set()  # a keep-alive came while the job waited
        assert events[0][0] in ("state", "progress")
        name, last = events[-1]
        if last["status"] == "canceled":
            assert name == "error"
            assert last["code"] == "canceled"
        else:  # the worker was quicker than the keep-alive: it completed instead
            assert name == "complete"
        for job_id in ids[:-1]:
            wait_done(client, job_id)


def test_finished_job_stream_is_one_complete_event(client: TestClient) -> None:
    job = wait_done(client, submit(client).json()["id"])
    events = read_events(client, f"/v1/jobs/{job['id']}/events")
    assert [name for name, _ in events] == ["complete"]
    data = events[0][1]
    assert data["percent"] == 100
    assert data["results"]["cutout"]["url"] == f"/v1/jobs/{job['id']}/result"
    assert data["results"]["mask"]["media_type"] == "image/png"


def test_failed_job_stream_is_one_error_event(client: TestClient) -> None:
    full = png_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    r = client.post("/v1/jobs", files={"file": ("a.png", full[: len(full) // 2], "image/png")})
    if r.status_code != 202:
        return  # refused up front (422): nothing to stream
    job = wait_done(client, r.json()["id"])
    events = read_events(client, f"/v1/jobs/{job['id']}/events")
    assert [name for name, _ in events] == ["error"]
    assert events[0][1]["code"] == job["error"]["code"]


def test_unknown_job_stream_is_404(client: TestClient) -> None:
    assert_error(client.get("/v1/jobs/0123456789abcdef/events"), 404, "job_not_found")


def test_event_rendering() -> None:
    progress = JobEvent("j1", "progress", JobStatus.PROCESSING, "inference", 0.456)
    assert event_payload(progress) == (
        "progress",
        {
            "id": "j1",
            "status": "processing",
            "stage": "inference",
            "progress": 0.456,
            "percent": 45,
        },
    )
    name, data = event_payload(JobEvent("j1", "state", JobStatus.CANCELED))
    assert (name, data["code"]) == ("error", "canceled")
    failed = JobEvent(
        "j1", "error", JobStatus.FAILED, data={"code": "corrupt_image", "message": "x"}
    )
    assert event_payload(failed)[1]["code"] == "corrupt_image"
    assert frame("progress", {"a": 1}, 3) == b'id: 3\nevent: progress\ndata: {"a":1}\n\n'
