"""One run's view of the job's blobs: writes and deletes only while the run still owns its job.

Blob keys are the job's own (``jobs/<id>/cutout``), so a second run of the same job writes the
same keys rather than a second result. What must not happen is a run that lost its job (its
worker went silent, the reaper handed the job to another worker, which finished it) deleting or
overwriting the winner's results when it wakes up: every ``put`` and ``delete`` here first checks
that the job's ``attempts`` is still this run's and that it has not succeeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from cleancut.errors import JobConflict
from cleancut.jobs.model import JobStatus
from cleancut.storage import BlobInfo, BlobStore

from .pgstore import PgJobStore


class FencedBlobs:
    def __init__(self, inner: BlobStore, store: PgJobStore, job_id: str, attempt: int) -> None:
        self._inner = inner
        self._store = store
        self._job_id = job_id
        self._attempt = attempt

    def _mine(self) -> bool:
        owned = self._store.owns(self._job_id, self._attempt)
        return owned is not None and owned[1] and owned[0] is not JobStatus.SUCCEEDED

    def put(self, key: str, data: bytes) -> BlobInfo:
        owned = self._store.owns(self._job_id, self._attempt)
        if owned is None or owned != (JobStatus.PROCESSING, True):
            raise JobConflict(f"job {self._job_id} is no longer run {self._attempt}'s")
        return self._inner.put(key, data)

    def get(self, key: str) -> bytes:
        return self._inner.get(key)

    def open(self, key: str) -> BinaryIO:
        return self._inner.open(key)

    def stat(self, key: str) -> BlobInfo:
        return self._inner.stat(key)

    def exists(self, key: str) -> bool:
        return self._inner.exists(key)

    def delete(self, key: str) -> bool:
        return self._inner.delete(key) if self._mine() else False

    def delete_prefix(self, prefix: str) -> int:
        return self._inner.delete_prefix(prefix) if self._mine() else 0

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        return self._inner.iter_keys(prefix)

    def close(self) -> None:
        return None  # the worker's store outlives each run
