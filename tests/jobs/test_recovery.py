"""Durability: restart after a crash, retention cleanup, orphaned blobs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cleancut.core.predict import ModelPool
from cleancut.jobs import blobs as jobblobs
from cleancut.jobs.model import ORIGINAL, Job, JobStatus
from cleancut.jobs.service import Submission
from cleancut.jobs.sqlite import SQLiteJobStore
from cleancut.storage.local import LocalBlobStore
from tests.jobs.conftest import TINY, Factory, wait_for
from tests.jobs.records import job_record

S = JobStatus


def _job(job_id: str, status: JobStatus, attempts: int, blobs: LocalBlobStore, image: bytes) -> Job:
    processing = status is S.PROCESSING
    return job_record(
        status,
        id=job_id,
        options=TINY,
        created_at=1.0,
        updated_at=1.0,
        started_at=1.0 if processing else None,
        expires_at=1e12,
        attempts=attempts,
        stage="inference" if processing else None,
        results={ORIGINAL: jobblobs.save_original(blobs, job_id, image)},
    )


def test_restart_after_a_crash_finishes_or_fails_every_job(
    make_service: Factory, pool: ModelPool, image: bytes, tmp_path: Path
) -> None:
    # What a kill -9 leaves behind: rows mid-processing and queued, with their uploads.
    data = tmp_path / "data"
    store, blobs = SQLiteJobStore(data / "jobs.sqlite3"), LocalBlobStore(data / "blobs")
    store.insert(_job("retry", S.PROCESSING, 1, blobs, image))
    store.insert(_job("spent", S.PROCESSING, 3, blobs, image))
    store.insert(_job("waiting", S.QUEUED, 0, blobs, image))
    store.close()

    svc = make_service(pool, max_attempts=3)
    retried = svc.wait("retry", 30)
    assert (retried.status, retried.attempts) == (S.SUCCEEDED, 2)
    assert svc.wait("waiting", 30).status is S.SUCCEEDED
    spent = svc.get("spent")
    assert (spent.status, spent.error_code) == (S.FAILED, "interrupted")
    assert "3 attempt" in (spent.error_message or "")
    assert not (data / "blobs" / "jobs" / "spent").exists()
    assert any("1 re-queued, 1 failed" in line for line in make_service.logs)


def test_submitted_jobs_survive_a_stop_and_run_after_restart(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    first = make_service(pool, start=False)
    ids = [first.submit(Submission(TINY, upload=image)).id for _ in range(3)]
    first.stop()
    second = make_service(pool)
    for job_id in ids:
        assert second.wait(job_id, 30).status is S.SUCCEEDED


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_expired_jobs_and_their_blobs_are_cleaned(
    make_service: Factory, pool: ModelPool, image: bytes, tmp_path: Path
) -> None:
    clock = Clock()
    svc = make_service(pool, clock=clock, retention_seconds=100.0, orphan_grace=50.0)
    done = svc.run_sync(Submission(TINY, upload=image), timeout=30)
    assert done.expires_at == done.finished_at + 100.0 == clock.now + 100.0
    jobs_dir = tmp_path / "data" / "blobs" / "jobs"
    # a blob folder without a record: what a crash between upload and insert leaves
    LocalBlobStore(tmp_path / "data" / "blobs").put("jobs/orphan/original", b"x")

    clock.now += 99
    svc.clean()
    assert svc.get(done.id) == done
    assert (jobs_dir / done.id).is_dir()
    assert (jobs_dir / "orphan").exists()  # young: a submit may be writing it right now

    clock.now = 4e9  # far past the retention, and the orphan's mtime is far past the grace
    svc.clean()
    assert svc.list() == []
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []


def test_unfinished_jobs_never_expire(make_service: Factory, pool: ModelPool, image: bytes) -> None:
    clock = Clock()
    svc = make_service(pool, clock=clock, start=False, retention_seconds=1.0)
    job = svc.submit(Submission(TINY, upload=image))
    clock.now += 1e6
    svc.clean()
    assert svc.get(job.id).status is S.QUEUED
    svc.start()
    done = svc.wait(job.id, 30)
    assert done.status is S.SUCCEEDED
    assert done.expires_at == clock.now + 1.0
    wait_for(lambda: svc.stats().workers_busy == 0)


def test_recovered_job_counts_attempts(
    make_service: Factory, pool: ModelPool, image: bytes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    store, blobs = SQLiteJobStore(data / "jobs.sqlite3"), LocalBlobStore(data / "blobs")
    store.insert(replace(_job("once", S.PROCESSING, 1, blobs, image)))
    store.close()
    svc = make_service(pool, max_attempts=1)
    assert svc.get("once").error_code == "interrupted"
