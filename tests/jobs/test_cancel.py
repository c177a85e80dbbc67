"""Cancellation, timeouts and unexpected errors: a job always ends, and only once."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleancut.core.predict import Segmenter
from cleancut.errors import JobConflict
from cleancut.jobs.model import JobStatus
from cleancut.jobs.service import Submission
from tests.jobs.conftest import TINY, CountingPool, Factory, wait_for

S = JobStatus


def _blob_dir(tmp_path: Path, job_id: str) -> Path:
    return tmp_path / "data" / "blobs" / "jobs" / job_id


def test_a_canceled_queued_job_never_runs(
    make_service: Factory, counting: CountingPool, image: bytes, tmp_path: Path
) -> None:
    svc = make_service(counting, start=False)
    job = svc.submit(Submission(TINY, upload=image))
    canceled = svc.cancel(job.id)
    assert canceled.status is S.CANCELED and canceled.finished_at is not None
    assert not _blob_dir(tmp_path, job.id).exists()
    svc.start()
    after = svc.run_sync(Submission(TINY, upload=image), timeout=30)  # the worker is alive
    assert after.status is S.SUCCEEDED
    assert counting.runs == 1  # only the second job ran
    assert svc.get(job.id).status is S.CANCELED
    with pytest.raises(JobConflict):
        svc.cancel(job.id)
    with pytest.raises(JobConflict):
        svc.cancel(after.id)


def test_canceling_a_processing_job_discards_its_result(
    make_service: Factory, counting: CountingPool, image: bytes, tmp_path: Path
) -> None:
    counting.block = True
    svc = make_service(counting)
    job = svc.submit(Submission(TINY, upload=image))
    assert counting.entered.wait(30)
    assert svc.get(job.id).status is S.PROCESSING
    assert svc.cancel(job.id).status is S.CANCELED
    counting.release.set()
    wait_for(lambda: svc.stats().workers_busy == 0)
    final = svc.get(job.id)
    assert (final.status, final.results) == (S.CANCELED, {})
    assert not _blob_dir(tmp_path, job.id).exists()
    assert svc.stats().counts["succeeded"] == 0


def test_a_job_past_its_time_limit_fails(
    make_service: Factory, counting: CountingPool, image: bytes, tmp_path: Path
) -> None:
    counting.block = True
    svc = make_service(counting, job_timeout=0.05)
    job = svc.submit(Submission(TINY, upload=image))
    failed = svc.wait(job.id, 30)
    assert (failed.status, failed.error_code) == (S.FAILED, "job_timeout")
    assert "0.05 seconds" in (failed.error_message or "")
    counting.release.set()
    wait_for(lambda: svc.stats().workers_busy == 0)
    assert svc.get(job.id).status is S.FAILED  # the late result was thrown away
    assert not _blob_dir(tmp_path, job.id).exists()


class ExplodingPool(CountingPool):
    def get(self, name: str) -> Segmenter:
        raise RuntimeError("secret internals: /etc/something")


def test_unexpected_errors_fail_as_internal_with_a_safe_message(
    make_service: Factory, counting: CountingPool, image: bytes
) -> None:
    svc = make_service(ExplodingPool(counting.inner))
    done = svc.run_sync(Submission(TINY, upload=image), timeout=30)
    assert (done.status, done.error_code) == (S.FAILED, "internal_error")
    assert "secret" not in (done.error_message or "")
    assert any("secret internals" in line and "Traceback" in line for line in make_service.logs)
