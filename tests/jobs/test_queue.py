from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleancut.jobs.model import Job
from cleancut.jobs.queue import LocalWorkerPool
from cleancut.jobs.sqlite import SQLiteJobStore
from tests.jobs.conftest import wait_for
from tests.jobs.test_sqlite import job


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    s = SQLiteJobStore(tmp_path / "q.sqlite3")
    yield s
    s.close()


class Gate:
    """A handler that records jobs and holds each until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.done: list[str] = []
        self.peak = 0
        self.release = threading.Event()

    def __call__(self, claimed: Job) -> None:
        with self.lock:
            self.running.add(claimed.id)
            self.peak = max(self.peak, len(self.running))
        assert self.release.wait(30)
        with self.lock:
            self.running.discard(claimed.id)
            self.done.append(claimed.id)


def test_workers_bound_concurrency_and_drain_the_queue(store: SQLiteJobStore) -> None:
    gate = Gate()
    pool = LocalWorkerPool(store, gate, workers=3, poll_interval=30)
    for n in range(10):
        store.insert(job(n))
    pool.start()
    try:
        wait_for(lambda: len(gate.running) == 3)
        assert pool.busy == 3 and pool.workers == 3
        gate.release.set()
        wait_for(lambda: len(gate.done) == 10)
        assert gate.peak == 3
        assert sorted(gate.done) == sorted(f"job{n}" for n in range(10))
    finally:
        gate.release.set()
        pool.stop(10)


def test_notify_wakes_an_idle_worker(store: SQLiteJobStore) -> None:
    """The poll interval is far longer than the test: only notify() can wake the worker."""
    seen: list[str] = []
    pool = LocalWorkerPool(store, lambda j: seen.append(j.id), workers=1, poll_interval=3600)
    pool.start()
    try:
        wait_for(lambda: pool.busy == 0)
        store.insert(job(1))
        pool.notify()
        wait_for(lambda: seen == ["job1"])
    finally:
        pool.stop(10)


def test_watchdog_reports_jobs_running_past_the_timeout(store: SQLiteJobStore) -> None:
    gate = Gate()
    late: list[str] = []
    pool = LocalWorkerPool(
        store, gate, workers=1, job_timeout=0.05, on_timeout=late.append, poll_interval=30
    )
    store.insert(job(1))
    pool.start()
    try:
        wait_for(lambda: late == ["job1"])
    finally:
        gate.release.set()
        pool.stop(10)
    assert late == ["job1"]  # reported once


def test_a_crashing_handler_does_not_kill_the_worker(store: SQLiteJobStore) -> None:
    seen: list[str] = []
    logs: list[str] = []

    def handler(claimed: Job) -> None:
        seen.append(claimed.id)
        raise RuntimeError("boom")

    pool = LocalWorkerPool(store, handler, workers=1, poll_interval=30, log=logs.append)
    store.insert(job(1))
    store.insert(job(2))
    pool.start()
    try:
        wait_for(lambda: len(seen) == 2)
    finally:
        pool.stop(10)
    assert any("boom" in line for line in logs)


def test_pool_needs_a_worker(store: SQLiteJobStore) -> None:
    with pytest.raises(ValueError, match="at least one"):
        LocalWorkerPool(store, lambda j: None, workers=0)
