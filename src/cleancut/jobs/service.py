"""JobService: the one object the API layer calls (skeleton; being implemented)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from cleancut.core.types import Options
from cleancut.jobs.model import BlobRef, Job, JobEvent
from cleancut.net_webhooks import WebhookSpec


@dataclass(frozen=True)
class Submission:
    options: Options
    upload: bytes | None = None
    url: str | None = None
    owner: str | None = None
    idempotency_key: str | None = None
    webhook: WebhookSpec | None = None


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram in Prometheus' shape: ``counts[i]`` observations <= ``bounds[i]``
    (the last bound is ``inf``), their ``sum`` and ``count``."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int


@dataclass(frozen=True)
class ServiceStats:
    counts: Mapping[str, int]  # every JobStatus value -> number of job records
    queue_depth: int  # queued jobs
    queue_size: int  # the bound: submit raises QueueFull at this depth
    workers: int
    workers_busy: int
    latency: Histogram  # created -> finished, seconds, jobs finished since start()
    processing: Histogram  # started -> finished, seconds
    recent: tuple[float, ...] = field(default=())  # the last latency samples (seconds)


class EventStream(AsyncIterator[JobEvent]):
    async def __anext__(self) -> JobEvent:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class JobService:
    def submit(self, sub: Submission) -> Job:
        raise NotImplementedError

    def get(self, job_id: str, owner: str | None = None) -> Job:
        raise NotImplementedError

    def list(self, owner: str | None = None, limit: int = 50) -> list[Job]:
        raise NotImplementedError

    def cancel(self, job_id: str, owner: str | None = None) -> Job:
        raise NotImplementedError

    def apply_effects(self, job_id: str, options: Options, owner: str | None = None) -> Job:
        raise NotImplementedError

    def open_blob(self, job: Job, name: str) -> tuple[BlobRef, bytes]:
        raise NotImplementedError

    def run_sync(self, sub: Submission, timeout: float) -> Job:
        raise NotImplementedError

    def subscribe(self, job_id: str) -> EventStream:
        raise NotImplementedError

    def stats(self) -> ServiceStats:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        raise NotImplementedError
