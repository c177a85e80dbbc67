"""What the distributed backend needs to know: plain data, built from ``Settings`` by
``Settings.distributed_config()`` (the CLI and ``create_app`` are the composition roots)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cleancut.storage.s3 import S3Options


@dataclass(frozen=True)
class DistributedConfig:
    database_url: str  # postgresql://user:password@host:5432/db
    broker_url: str  # redis://host:6379/0 or amqp://user:password@host:5672//
    events_url: str  # redis://host:6379/0
    blob_url: str  # s3://bucket/prefix, or a folder every node shares
    s3: S3Options = field(default_factory=S3Options)
    #: names queues (``<namespace>.<model>``), Redis channels and the Celery app, so several
    #: deployments (or test runs) can share one broker
    namespace: str = "cleancut"
    default_model: str = "isnet-general"
    queue_size: int = 64
    max_attempts: int = 3
    retention_seconds: float = 24 * 3600.0
    job_timeout: float | None = 300.0
    #: a processing job whose worker has not written a heartbeat for this long is re-queued
    #: (or failed once its attempts are spent)
    lease_seconds: float = 30.0
    #: queued jobs whose broker message may have been lost (a broker restart without
    #: persistence) are published again after this long
    redeliver_after: float = 300.0
    cleanup_interval: float = 60.0
    orphan_grace: float = 3600.0
    progress_interval: float = 0.2
    event_buffer: int = 64
    webhook_threads: int = 2

    @property
    def heartbeat_seconds(self) -> float:
        """How often a worker writes its heartbeat (and checks timeouts and stale jobs)."""
        return max(0.2, self.lease_seconds / 4)

    @property
    def visibility_timeout(self) -> int:
        """Redis broker only: unacknowledged messages come back after this long. Longer than
        any job may run, so a slow job is not delivered twice while it runs."""
        longest = self.job_timeout if self.job_timeout is not None else 3600.0
        return int(longest + 2 * self.lease_seconds + 60)

    def queue(self, model: str) -> str:
        return queue_name(self.namespace, model)


def queue_name(namespace: str, model: str) -> str:
    """The Celery queue of one model: the workers that serve it consume it."""
    return f"{namespace}.{model}"
