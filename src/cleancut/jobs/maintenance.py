"""Housekeeping of the job layer: startup recovery, retention cleanup, orphan blobs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cleancut.errors import JobConflict
from cleancut.jobs import blobs as jobblobs
from cleancut.jobs import runner
from cleancut.jobs.model import JobStatus
from cleancut.jobs.store import JobStore
from cleancut.storage import BlobStore

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class Recovery:
    requeued: int
    failed: int
    queued: int


def recover(deps: runner.RunnerDeps, max_attempts: int) -> Recovery:
    """After a restart or crash: jobs left ``processing`` go back to the queue while they have
    attempts left, else fail with ``interrupted``. Queued jobs simply stay queued."""
    store = deps.store
    requeued = failed = 0
    for job in store.list_jobs(limit=1 << 62, statuses=[JobStatus.PROCESSING]):
        if job.attempts < max_attempts:
            try:
                store.transition(job.id, JobStatus.QUEUED, expect=JobStatus.PROCESSING, stage=None)
            except JobConflict:
                continue
            requeued += 1
        else:
            message = (
                f"the server stopped while this job ran ({job.attempts} attempt(s), "
                f"the limit is {max_attempts})"
            )
            failed += runner.fail(job.id, deps, "interrupted", message) is not None
    queued = store.counts()[JobStatus.QUEUED]
    return Recovery(requeued, failed, queued)


def clean_expired(store: JobStore, blobs: BlobStore, now: float) -> int:
    """Delete finished jobs past ``expires_at``: their blobs first, then the record."""
    count = 0
    while batch := store.expired(now, limit=200):
        for job in batch:
            blobs.delete_prefix(jobblobs.prefix(job.id))
            count += store.delete(job.id)
    return count


def sweep_orphans(store: JobStore, blobs: BlobStore, now: float, grace: float) -> int:
    """Delete blob folders whose job record is gone (a crash between storing an upload and
    its record, or a delete that stopped half-way), once older than ``grace`` seconds."""
    seen: set[str] = set()
    count = 0
    for key in blobs.iter_keys("jobs"):
        parts = key.split("/")
        if len(parts) < 3 or parts[1] in seen:
            continue
        job_id = parts[1]
        seen.add(job_id)
        if store.exists(job_id):
            continue
        if now - blobs.stat(key).modified >= grace:
            count += blobs.delete_prefix(jobblobs.prefix(job_id))
    return count


class Periodic:
    """Runs ``task`` every ``interval`` seconds on a daemon thread until ``stop``."""

    def __init__(self, name: str, interval: float, task: Callable[[], None], log: LogFn) -> None:
        self._interval = interval
        self._task = task
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._task()
            except Exception as exc:
                self._log(f"{self._thread.name} failed: {exc!r}")
