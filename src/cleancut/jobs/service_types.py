"""The plain data the API layer exchanges with :class:`~cleancut.jobs.service.JobService`
(re-exported there)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cleancut.core.types import Options
from cleancut.jobs.model import Destination
from cleancut.jobs.stats import Histogram
from cleancut.net_webhooks import WebhookSpec


@dataclass(frozen=True)
class Submission:
    options: Options
    upload: bytes | None = None  # exactly one of upload / url
    url: str | None = None
    owner: str | None = None
    idempotency_key: str | None = None
    webhook: WebhookSpec | None = None
    #: PUT these blobs to these URLs once the result is stored (the job fails if one fails)
    destinations: tuple[Destination, ...] = ()
    #: JSON-serialisable data kept on the job as it is (at most ``MAX_META_BYTES`` as JSON)
    meta: Mapping[str, Any] = field(default_factory=dict)


MAX_META_BYTES = 16 * 1024


@dataclass(frozen=True)
class ServiceStats:
    counts: Mapping[str, int]  # every JobStatus value -> number of job records
    queue_depth: int  # queued jobs
    queue_size: int  # the bound: submit raises QueueFull at this depth
    workers: int
    workers_busy: int
    latency: Histogram  # created -> finished, seconds, jobs settled since this process started
    processing: Histogram  # started -> finished, seconds
    recent: tuple[float, ...] = field(default=())  # the last latency samples (seconds)
    #: per pipeline stage (decode, inference, refine, encode), succeeded jobs only
    stages: Mapping[str, Histogram] = field(default_factory=dict)
    #: messages waiting per broker queue (distributed backend; empty for the embedded one)
    queues: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceConfig:
    queue_size: int = 64
    max_attempts: int = 3
    retention_seconds: float = 24 * 3600.0
    job_timeout: float | None = 300.0
    #: models loaded at start(); ready() is true once they all are
    warm_models: tuple[str, ...] = ()
    cleanup_interval: float = 60.0
    #: blob folders without a job record are deleted once this old
    orphan_grace: float = 3600.0
    progress_interval: float = 0.2
    #: threads each job's full-resolution work may use (None: every core); with several
    #: workers, ``parallel.share(workers)``, and OpenCV's own pool is set to the same
    job_threads: int | None = None
    #: at start(), re-queue jobs a crash interrupted and re-send unsettled webhooks (the
    #: embedded server owns its jobs; distributed API nodes leave this to the workers)
    recover: bool = True
    #: how often wait()/run_sync re-read a job that another process settles
    wait_poll: float = 1.0
