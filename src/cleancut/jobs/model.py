"""Pure data of the job layer: statuses and their allowed transitions, jobs, blobs, events."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from cleancut.core.types import Options
from cleancut.errors import JobConflict
from cleancut.net_webhooks import WebhookSpec


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED}
)

#: Allowed status changes. ``processing -> queued`` re-queues a job a crash interrupted;
#: ``queued -> failed`` covers recovery giving up and inputs that cannot even start.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.CANCELED, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.QUEUED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}

#: Names of a job's blobs.
ORIGINAL = "original"
MASK = "mask"
CUTOUT = "cutout"
RESULT_NAMES: tuple[str, ...] = (CUTOUT, MASK, ORIGINAL)
#: Internal: the model's own matte, before refinement, kept when it differs from the mask so
#: that effects re-refine from it (refining the refined mask again would compound).
MATTE = "matte"


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    return new in TRANSITIONS[old]


def check_transition(job_id: str, old: JobStatus, new: JobStatus) -> None:
    if not can_transition(old, new):
        raise JobConflict(f"job {job_id} is {old.value}; it cannot become {new.value}")


def new_job_id() -> str:
    """URL-safe and unguessable: 128 random bits as 32 hex digits."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class BlobRef:
    key: str
    media_type: str
    size: int
    etag: str
    filename: str


@dataclass(frozen=True)
class Destination:
    """Where the runner PUTs one of a job's blobs once the result is stored: typically a
    pre-signed object-store URL. ``blob`` names the blob (``cutout`` or ``mask``)."""

    url: str
    blob: str = CUTOUT


#: Blobs a destination may name (the original is the caller's own input).
DESTINATION_BLOBS: tuple[str, ...] = (CUTOUT, MASK)


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery attempt, as shown on the job."""

    attempt: int
    at: float
    status_code: int | None
    error: str | None
    ok: bool
    duration: float = 0.0


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    options: Options
    source_url: str | None
    owner: str | None
    idempotency_key: str | None
    webhook: WebhookSpec | None
    parent_id: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float
    attempts: int = 0
    stage: str | None = None
    progress: float = 0.0
    error_code: str | None = None
    error_message: str | None = None
    results: Mapping[str, BlobRef] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    deliveries: tuple[Delivery, ...] = ()
    #: uploads the runner performs after storing the result; a failed one fails the job
    destinations: tuple[Destination, ...] = ()
    #: the submitter's own JSON data, stored and returned untouched (vendor routers keep the
    #: request fields they echo back here)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def downloads(self) -> Mapping[str, BlobRef]:
        """The results clients may download (internal blobs left out)."""
        return {name: ref for name, ref in self.results.items() if name in RESULT_NAMES}

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


EventKind = Literal["state", "progress", "complete", "error"]


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    kind: EventKind
    status: JobStatus
    stage: str | None = None
    progress: float = 0.0
    #: complete: {"results": {name: {...}}}; error: {"code", "message"}
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """The last event a subscriber gets for this job."""
        return self.kind in ("complete", "error") or self.status in TERMINAL

    @classmethod
    def of(cls, job: Job) -> JobEvent:
        """The event that describes ``job`` as it is now (what late subscribers get first)."""
        if job.status is JobStatus.SUCCEEDED:
            return cls(job.id, "complete", job.status, job.stage, 1.0, complete_data(job))
        if job.status is JobStatus.FAILED:
            data = {"code": job.error_code, "message": job.error_message}
            return cls(job.id, "error", job.status, job.stage, job.progress, data)
        return cls(job.id, "state", job.status, job.stage, job.progress)


def complete_data(job: Job) -> dict[str, Any]:
    return {
        "results": {
            name: {"media_type": ref.media_type, "size": ref.size, "filename": ref.filename}
            for name, ref in job.downloads.items()
        },
        "timings": dict(job.timings),
    }
