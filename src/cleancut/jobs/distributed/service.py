"""``build_distributed_service``: an API node's ``JobService`` on PostgreSQL, Celery, Redis
events and S3 (or a shared folder). It runs no inference: ``notify`` publishes the job id, the
workers (``cleancut worker``) run it, and their events reach this node's SSE streams."""

from __future__ import annotations

import time
from collections.abc import Callable

from cleancut import net
from cleancut.jobs.distributed import celery_app, migrate
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.events import RedisEventBus
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.distributed.queue import DistributedQueue
from cleancut.jobs.runner import SegmenterSource
from cleancut.jobs.service import JobService, ServiceConfig
from cleancut.jobs.webhooks import WebhookDispatcher
from cleancut.storage import BlobStore, open_store

LogFn = Callable[[str], None]


def open_blobs(config: DistributedConfig) -> BlobStore:
    if config.blob_url.lower().startswith("s3://"):
        from cleancut.storage.s3 import open_s3

        return open_s3(config.blob_url, config.s3)
    return open_store(config.blob_url)


def blob_check(blobs: BlobStore) -> Callable[[], None]:
    """Raises when the store cannot be reached (S3: HeadBucket; a folder: a lookup)."""
    ping: Callable[[], None] | None = getattr(blobs, "ping", None)
    if ping is not None:
        return ping

    def check() -> None:
        blobs.exists("readiness-probe")

    return check


def build_distributed_service(
    config: DistributedConfig,
    pool: SegmenterSource,
    net_policy: net.NetPolicy,
    log: LogFn = print,
    *,
    models: Callable[[], list[str]] | None = None,
    clock: Callable[[], float] = time.time,
) -> JobService:
    """Connect to the backends (checking the schema revision) and wire the service; call
    ``start()``. ``models`` names the queues ``/metrics`` reports (default: the default
    model's)."""
    store = PgJobStore(migrate.make_engine(config.database_url), clock=clock)
    try:
        migrate.check(store.engine)
        blobs = open_blobs(config)
    except BaseException:
        store.close()
        raise
    bus = RedisEventBus(
        config.events_url,
        namespace=config.namespace,
        snapshot=store.get,
        buffer_size=config.event_buffer,
        log=log,
    )
    app = celery_app.make_celery(config)
    queue = DistributedQueue(
        app,
        config,
        store,
        bus,
        models or (lambda: [config.default_model]),
        log=log,
        clock=clock,
    )
    webhooks = WebhookDispatcher(store, net_policy, threads=config.webhook_threads, log=log)
    service_config = ServiceConfig(
        queue_size=config.queue_size,
        max_attempts=config.max_attempts,
        retention_seconds=config.retention_seconds,
        job_timeout=config.job_timeout,
        warm_models=(),
        cleanup_interval=config.cleanup_interval,
        orphan_grace=config.orphan_grace,
        progress_interval=config.progress_interval,
        recover=False,
        wait_poll=0.2,
    )
    return JobService(
        store=store,
        blobs=blobs,
        bus=bus,
        segmenters=pool,
        net_policy=net_policy,
        queue_factory=lambda _handler, _on_timeout: queue,
        config=service_config,
        webhooks=webhooks,
        log=log,
        clock=clock,
        checks={
            "database": store.ping,
            "broker": queue.ping,
            "store": blob_check(blobs),
            "events": bus.ping,
        },
        queue_depths=queue.depths,
    )
