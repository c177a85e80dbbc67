"""A real ``cleancut serve`` process with the real model: SSE streaming, restarts, kill -9 and
a queue-full burst. Figures are printed for the closing note (run with -s to see them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.serverproc import TERMINAL, ServerProcess
from tests.conftest import require_shared
from tests.polling import sse_events

pytestmark = [pytest.mark.model, pytest.mark.slow]
BURST = 12


@pytest.fixture(scope="module")
def photo() -> bytes:
    return (require_shared() / "people-removebg" / "images" / "p101.jpg").read_bytes()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", {"workers": "1"})
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


def test_sse_progress_then_complete_and_a_late_subscriber(
    server: ServerProcess, http: httpx.Client, photo: bytes
) -> None:
    server.start()
    server.wait_ready()
    job = server.submit(http, photo).json()
    events = list(sse_events(http, f"{server.url}/v1/jobs/{job['id']}/events"))
    names = [name for name, _ in events]
    assert names[0] in ("state", "progress"), names
    assert events[0][1]["status"] in ("queued", "processing")
    assert names[-1] == "complete", events
    assert names.count("complete") == 1
    progress = [data for name, data in events if name == "progress"]
    assert progress, names
    assert {p["stage"] for p in progress} >= {"inference"}
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents)
    assert all(0 <= p <= 100 for p in percents)
    final = events[-1][1]
    assert final["status"] == "succeeded"
    assert final["results"]["cutout"]["url"] == f"/v1/jobs/{job['id']}/result"
    # a late subscriber first (and only) gets the current state: complete
    late = list(sse_events(http, f"{server.url}/v1/jobs/{job['id']}/events"))
    assert [name for name, _ in late] == ["complete"]
    cutout = http.get(f"{server.url}{final['results']['cutout']['url']}")
    assert cutout.status_code == 200
    assert cutout.headers["content-type"] == "image/png"
    assert server.stop()


def test_queue_full_burst_then_graceful_restart(
    tmp_path: Path, http: httpx.Client, photo: bytes
) -> None:
    server = ServerProcess(tmp_path / "data", {"workers": "1", "queue_size": "2"})
    server.start()
    server.wait_ready()
    try:
        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(lambda _: server.submit(http, photo), range(BURST)))
        accepted = [r.json()["id"] for r in answers if r.status_code == 202]
        rejected = [r for r in answers if r.status_code in (429, 503)]
        other = [r.status_code for r in answers if r.status_code not in (202, 429, 503)]
        assert not other, other
        assert len(accepted) >= 2
        assert rejected, "a burst over a queue of 2 must be refused in part"
        for r in rejected:
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] in ("queue_full", "rate_limited")
        # graceful restart while jobs still wait: they survive and run after it
        assert server.stop()
        server.start()
        server.wait_ready()
        jobs = server.wait_all(http, accepted)
    finally:
        server.stop()
    finished = [j for j in jobs.values() if j["status"] == "succeeded" and "cutout" in j["results"]]
    lost = len(accepted) - len(finished)
    print(
        f"\nqueue-full burst: sent {BURST}, accepted {len(accepted)}, "
        f"rejected {len(rejected)} (429/503 + Retry-After), lost {lost}"
    )
    assert lost == 0, jobs


def test_kill9_mid_processing_loses_nothing(
    server: ServerProcess, http: httpx.Client, photo: bytes
) -> None:
    server.settings = {"workers": "1", "max_attempts": "3"}
    server.start()
    server.wait_ready()
    ids = [server.submit(http, photo).json()["id"] for _ in range(3)]
    while True:  # kill while the first job is inside the model
        first = server.job(http, ids[0])
        if first["status"] == "processing" or first["status"] in TERMINAL:
            break
        time.sleep(0.01)
    assert first["status"] == "processing", "the first job finished before the kill"
    server.kill9()
    server.start()
    server.wait_ready()
    jobs = server.wait_all(http, ids)
    try:
        finished = 0
        for job_id, job in jobs.items():
            assert job["status"] == "succeeded", job
            result = http.get(f"{server.url}/v1/jobs/{job_id}/result")
            assert result.status_code == 200
            assert len(result.content) == job["results"]["cutout"]["size"]
            finished += 1
    finally:
        server.stop()
    lost = len(ids) - finished
    print(f"\nkill -9 durability: submitted {len(ids)}, finished {finished}, lost {lost}")
    assert finished == len(ids)
    assert jobs[ids[0]]["attempts"] >= 2  # it was interrupted and ran again
