"""The workers' sweep: jobs whose worker went silent, and queued jobs whose message is lost.

Every worker runs it on its heartbeat (no leader: each step is a compare-and-set in the store,
so two workers sweeping at once do each thing once):

- a processing job whose heartbeat is older than the lease (its worker was killed, lost power
  or lost the database) goes back to the queue and is published again while it has attempts
  left, else it fails as ``interrupted`` with the reason;
- a queued job whose message was last published longer ago than ``redeliver_after`` is
  published again once its model's queue is empty (a broker restarted without persistence
  forgets its messages; the store does not). While messages still wait in the queue there is
  no sign of a loss, so a long backlog is not duplicated. An extra message is harmless anyway:
  a delivery runs only a job it can claim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cleancut.jobs import runner
from cleancut.jobs.distributed import celery_app
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.fence import FencedBlobs
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.model import JobStatus

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class Sweep:
    requeued: int = 0
    failed: int = 0
    republished: int = 0


def fenced_deps(deps: runner.RunnerDeps, store: PgJobStore, job_id: str, attempt: int) -> Any:
    """``deps`` for one run of one job: store and blobs fenced by the run's attempt."""
    return dataclasses.replace(
        deps,
        store=store.fenced(job_id, attempt),
        blobs=FencedBlobs(deps.blobs, store, job_id, attempt),
    )


def sweep(
    store: PgJobStore,
    deps: runner.RunnerDeps,
    app: Any,
    config: DistributedConfig,
    now: float,
    log: LogFn,
) -> Sweep:
    requeued = failed = republished = 0
    silent_since = now - config.lease_seconds
    for job in store.stale_processing(silent_since):
        if job.attempts < config.max_attempts:
            back = store.requeue_stale(job.id, job.attempts, silent_since, now)
            if back is None:
                continue
            requeued += 1
            log(f"job {job.id}: its worker went silent; queued again (attempt {job.attempts})")
            _publish(store, app, config, back.id, back.options.model, log)
        else:
            message = (
                f"its worker stopped responding ({job.attempts} attempt(s), "
                f"the limit is {config.max_attempts})"
            )
            view = fenced_deps(deps, store, job.id, job.attempts)
            if runner.fail(job.id, view, "interrupted", message, expect=JobStatus.PROCESSING):
                failed += 1
                log(f"job {job.id}: failed, {message}")
    lost_before = now - config.redeliver_after
    drained: dict[str, bool] = {}
    for job in store.stale_queued(lost_before):
        model = job.options.model
        if model not in drained:  # messages still waiting: no sign that any was lost
            drained[model] = _queue_empty(app, config.queue(model), log)
        if drained[model] and store.mark_enqueued(job.id, lost_before, now):
            republished += 1
            _publish(store, app, config, job.id, model, log)
    return Sweep(requeued, failed, republished)


def _queue_empty(app: Any, queue: str, log: LogFn) -> bool:
    try:
        return celery_app.queue_depth(app, queue) == 0
    except Exception as exc:  # the broker is down: publishing would fail anyway
        log(f"reading the depth of {queue} failed: {exc!r}")
        return False


def _publish(
    store: PgJobStore, app: Any, config: DistributedConfig, job_id: str, model: str, log: LogFn
) -> None:
    try:
        celery_app.publish(app, config, job_id, model)
    except Exception as exc:
        log(f"publishing job {job_id} failed: {exc!r}; the next sweep tries again")
        store.mark_enqueued(job_id, float("inf"), 0.0)
