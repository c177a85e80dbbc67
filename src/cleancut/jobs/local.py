"""The embedded default: a SQLite job store and a blob folder under one data directory, an
in-process worker pool and an in-memory event bus. Needs nothing else installed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cleancut import net
from cleancut.core import parallel
from cleancut.jobs.events import InMemoryEventBus
from cleancut.jobs.model import Job
from cleancut.jobs.queue import JobQueue, LocalWorkerPool
from cleancut.jobs.runner import SegmenterSource
from cleancut.jobs.service import JobService, ServiceConfig
from cleancut.jobs.sqlite import SQLiteJobStore
from cleancut.jobs.webhooks import Links, WebhookDispatcher, default_links
from cleancut.storage import open_store

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class LocalConfig:
    data_dir: Path  # jobs.sqlite3 and blobs/ live here
    workers: int = 1
    queue_size: int = 64
    max_attempts: int = 3
    retention_seconds: float = 24 * 3600.0
    job_timeout: float | None = 300.0
    #: models loaded at start(); ready() turns true when they all are
    warm_models: tuple[str, ...] = ()
    #: blob storage URL or path; default ``<data_dir>/blobs``
    blob_url: str | None = None
    cleanup_interval: float = 60.0
    orphan_grace: float = 3600.0
    progress_interval: float = 0.2
    event_buffer: int = 64
    # webhook defaults
    webhook_threads: int = 2
    #: relative links put into webhook payloads (the API's routes)
    webhook_links: Links = default_links

    def service_config(self) -> ServiceConfig:
        return ServiceConfig(
            queue_size=self.queue_size,
            max_attempts=self.max_attempts,
            retention_seconds=self.retention_seconds,
            job_timeout=self.job_timeout,
            warm_models=self.warm_models,
            cleanup_interval=self.cleanup_interval,
            orphan_grace=self.orphan_grace,
            progress_interval=self.progress_interval,
            job_threads=parallel.share(self.workers),
        )


def build_local_service(
    config: LocalConfig,
    pool: SegmenterSource,
    net_policy: net.NetPolicy,
    log: LogFn = print,
    *,
    clock: Callable[[], float] = time.time,
) -> JobService:
    """Open (or create) the data directory and wire the embedded service; call ``start()``."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteJobStore(config.data_dir / "jobs.sqlite3", clock=clock)
    try:
        blobs = open_store(config.blob_url or (config.data_dir / "blobs"))
    except BaseException:
        store.close()
        raise
    webhooks = WebhookDispatcher(
        store, net_policy, threads=config.webhook_threads, links=config.webhook_links, log=log
    )

    def make_queue(handler: Callable[[Job], None], on_timeout: Callable[[str], None]) -> JobQueue:
        return LocalWorkerPool(
            store,
            handler,
            workers=config.workers,
            job_timeout=config.job_timeout,
            on_timeout=on_timeout,
            log=log,
            clock=clock,
        )

    return JobService(
        store=store,
        blobs=blobs,
        bus=InMemoryEventBus(config.event_buffer),
        segmenters=pool,
        net_policy=net_policy,
        queue_factory=make_queue,
        config=config.service_config(),
        webhooks=webhooks,
        log=log,
        clock=clock,
    )
