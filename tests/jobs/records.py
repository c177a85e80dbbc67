"""A job record with every field filled in, for tests of code that only reads records."""

from __future__ import annotations

from typing import Any

from cleancut.core.types import Options
from cleancut.jobs.model import Job, JobStatus


def job_record(status: JobStatus = JobStatus.QUEUED, **fields: Any) -> Job:
    base: dict[str, Any] = {
        "id": "j",
        "status": status,
        "options": Options(),
        "source_url": None,
        "owner": None,
        "idempotency_key": None,
        "webhook": None,
        "parent_id": None,
        "created_at": 0.0,
        "updated_at": 0.0,
        "started_at": None,
        "finished_at": None,
        "expires_at": 1.0,
    }
    return Job(**{**base, **fields})
