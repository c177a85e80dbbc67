"""The JobStore Protocol: durable job records, and the queue's source of truth.

The local implementation is ``jobs/sqlite.py``; a PostgreSQL one can follow the same contract.
Every status change goes through :meth:`JobStore.transition`, which checks ``TRANSITIONS``
(and an optional expected current status) atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from cleancut.jobs.model import Delivery, Job, JobStatus

#: Fields ``transition`` may change besides the status.
MUTABLE_FIELDS = frozenset(
    {
        "started_at",
        "finished_at",
        "expires_at",
        "stage",
        "progress",
        "error_code",
        "error_message",
        "results",
        "timings",
        "attempts",
    }
)


class JobStore(Protocol):
    def insert(self, job: Job, *, max_queued: int | None = None) -> tuple[Job, bool]:
        """Insert ``job``: ``(job, True)``. When its (owner, idempotency_key) already exists,
        ``(existing, False)`` and nothing is written. When ``max_queued`` is given and that
        many jobs are already queued, raises QueueFull. All three checks are atomic."""
        ...

    def get(self, job_id: str) -> Job | None: ...

    def find(self, owner: str | None, idempotency_key: str) -> Job | None: ...

    def list_jobs(
        self,
        owner: str | None = None,
        limit: int = 50,
        statuses: Sequence[JobStatus] | None = None,
    ) -> list[Job]:
        """Newest first; ``owner=None`` lists every owner's jobs."""
        ...

    def counts(self) -> dict[JobStatus, int]: ...

    def claim_next(self, now: float) -> Job | None:
        """Atomically move the oldest queued job to processing (attempts + 1, started_at=now)
        and return it; None when nothing is queued. A job is never claimed twice."""
        ...

    def transition(
        self, job_id: str, to: JobStatus, *, expect: JobStatus | None = None, **changes: Any
    ) -> Job:
        """Change the status (and ``MUTABLE_FIELDS`` in ``changes``) atomically. Raises
        JobNotFound, or JobConflict when ``TRANSITIONS`` forbids it or the current status
        is not ``expect``."""
        ...

    def set_progress(self, job_id: str, stage: str, progress: float) -> JobStatus | None:
        """Record progress of a processing job; returns the job's status, which is only
        still ``processing`` when the write happened (None when the job is gone)."""
        ...

    def add_deliveries(self, job_id: str, deliveries: Sequence[Delivery], *, done: bool) -> None:
        """Append webhook attempts to the job's log; ``done`` marks the webhook settled."""
        ...

    def pending_webhooks(self) -> list[Job]:
        """Terminal jobs with a webhook that was never settled (the server stopped)."""
        ...

    def expired(self, now: float, limit: int = 100) -> list[Job]:
        """Terminal jobs whose ``expires_at`` has passed, oldest first."""
        ...

    def exists(self, job_id: str) -> bool: ...

    def delete(self, job_id: str) -> bool: ...

    def close(self) -> None: ...
