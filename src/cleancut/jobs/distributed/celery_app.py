"""The Celery app both sides share: API nodes publish with it, workers consume with it.

A task message carries only the job id; everything else is in the job store. Each model has
its own queue (``<namespace>.<model>``), consumed by the workers that serve that model (CPU
and GPU workers alike: with a prefetch of one, a faster worker simply takes more). Messages
are acknowledged late (after the run) and rejected back to the queue when the worker process
is lost, so a message survives a worker that dies holding it: RabbitMQ redelivers as soon as
the connection drops, the Redis transport after its visibility timeout. The store's claim makes
any extra delivery a no-op.
"""

from __future__ import annotations

import contextlib
from typing import Any

from cleancut.jobs.distributed.config import DistributedConfig

#: The one task: run (or re-check) the job whose id is the only argument.
TASK = "cleancut.run_job"


def is_redis(url: str) -> bool:
    return url.split(":", 1)[0].lower() in ("redis", "rediss", "redis+socket")


def make_celery(config: DistributedConfig) -> Any:
    from celery import Celery

    app = Celery(config.namespace, broker=config.broker_url, set_as_current=False)
    transport: dict[str, Any] = {}
    if is_redis(config.broker_url):
        transport = {
            "visibility_timeout": config.visibility_timeout,
            "socket_connect_timeout": 5,
            "socket_timeout": 10,
            "retry_on_timeout": True,
            "health_check_interval": 10,
        }
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis only: fetch a message only when a slot is free (prefetch 1 for real).
        worker_disable_prefetch=is_redis(config.broker_url),
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_default_queue=config.queue(config.default_model),
        task_create_missing_queues=True,
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2.0,
        },
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=5,
        broker_heartbeat=30,
        broker_transport_options=transport,
        broker_pool_limit=10,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


def publish(app: Any, config: DistributedConfig, job_id: str, model: str) -> None:
    """Send the job's message to its model's queue (declared on first use)."""
    app.send_task(TASK, args=[job_id], queue=config.queue(model))


def queue_depth(app: Any, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when the broker does not know it yet)."""
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=5)
        channel = conn.channel()
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except Exception as exc:  # RabbitMQ: 404 NOT_FOUND for a queue never declared
            if "NOT_FOUND" in str(exc) or "404" in str(exc):
                return 0
            raise
        finally:
            with contextlib.suppress(Exception):
                channel.close()


def ping(app: Any) -> None:
    """Raises when the broker cannot be reached within a few seconds."""
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=5)
