"""JobService: the one object the API layer calls. Synchronous and thread-safe.

It owns the pieces behind their Protocols (job store, blob store, event bus, job queue,
webhook dispatcher) and is built by a composition function such as
``jobs.local.build_local_service``; nothing here knows SQLite or the local folder.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cleancut import net
from cleancut.core import parallel, pipeline
from cleancut.core.types import Options
from cleancut.errors import (
    InvalidInput,
    JobConflict,
    JobNotFound,
    JobTimedOut,
    QueueFull,
    ResultNotFound,
)
from cleancut.jobs import blobs as jobblobs
from cleancut.jobs import effects, maintenance, runner
from cleancut.jobs.events import EventBus, EventStream
from cleancut.jobs.inspect import probe
from cleancut.jobs.model import (
    DESTINATION_BLOBS,
    ORIGINAL,
    BlobRef,
    Job,
    JobEvent,
    JobStatus,
    new_job_id,
)
from cleancut.jobs.queue import JobQueue
from cleancut.jobs.runner import RunnerDeps, SegmenterSource
from cleancut.jobs.service_types import MAX_META_BYTES, ServiceConfig, ServiceStats, Submission
from cleancut.jobs.stats import STAGES, Histogram, Recorder
from cleancut.jobs.store import JobStore
from cleancut.jobs.waiters import Waiters
from cleancut.jobs.webhooks import PayloadFn, WebhookDispatcher
from cleancut.storage import BlobStore

LogFn = Callable[[str], None]
#: Builds the queue from the service's job handler and its timeout callback.
QueueFactory = Callable[[Callable[[Job], None], Callable[[str], None]], JobQueue]

__all__ = [
    "EventStream",
    "Histogram",
    "JobService",
    "QueueFactory",
    "ServiceConfig",
    "ServiceStats",
    "Submission",
]


class JobService:
    def __init__(
        self,
        *,
        store: JobStore,
        blobs: BlobStore,
        bus: EventBus,
        segmenters: SegmenterSource,
        net_policy: net.NetPolicy,
        queue_factory: QueueFactory,
        config: ServiceConfig | None = None,
        webhooks: WebhookDispatcher | None = None,
        log: LogFn = print,
        clock: Callable[[], float] = time.time,
        checks: Mapping[str, Callable[[], None]] | None = None,
        queue_depths: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.config = config = config or ServiceConfig()
        #: readiness probes of the backend's servers (name -> raises when unreachable)
        self._checks = dict(checks or {})
        self._queue_depths = queue_depths
        self._store, self._blobs, self._bus = store, blobs, bus
        self._segmenters = segmenters
        self._policy = net_policy
        self._webhooks = webhooks
        self._log = log
        self._clock = clock
        self._latency, self._processing = Recorder(), Recorder()
        self._stages = {stage: Recorder() for stage in STAGES}
        self._waiters = Waiters(config.wait_poll)
        self._lock = threading.Lock()
        self._started = self._stopped = False
        self._library_threads: int | None = None
        self.deps = RunnerDeps(
            store=store,
            blobs=blobs,
            bus=bus,
            segmenters=segmenters,
            net_policy=net_policy,
            retention=config.retention_seconds,
            webhooks=webhooks,
            log=log,
            progress_interval=config.progress_interval,
            on_settled=self._settled,
            clock=clock,
            job_threads=config.job_threads,
        )
        self._queue = queue_factory(lambda job: self._execute(job.id), self._timed_out)
        self._cleaner = maintenance.Periodic(
            "cleancut-cleaner", config.cleanup_interval, self.clean, log
        )
        self._warmup = threading.Thread(target=self._warm, name="cleancut-warmup", daemon=True)
        # The compiled refinement loops are warmed with the models: a node that warms no
        # model (a distributed API node) runs no jobs and does not wait for them.
        self._kernels_warm = not config.warm_models

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, sub: Submission) -> Job:
        if (sub.upload is None) == (sub.url is None):
            raise InvalidInput("a job needs exactly one input: an upload or a URL")
        if sub.url is not None:
            net.validate_url(sub.url, self._policy)
        if sub.webhook is not None:
            net.check_url(sub.webhook.url, self._policy.for_webhooks())
        self._check_destinations(sub)
        if sub.idempotency_key is not None:
            found = self._store.find(sub.owner, sub.idempotency_key)
            if found is not None:
                return found
        if sub.upload is not None:
            probe(sub.upload, sub.options.max_pixels)
        self._check_depth()
        job_id, now = new_job_id(), self._clock()
        results: dict[str, BlobRef] = {}
        if sub.upload is not None:
            results[ORIGINAL] = jobblobs.save_original(self._blobs, job_id, sub.upload)
        job = Job(
            id=job_id,
            status=JobStatus.QUEUED,
            options=sub.options,
            source_url=sub.url,
            owner=sub.owner,
            idempotency_key=sub.idempotency_key,
            webhook=sub.webhook,
            parent_id=None,
            created_at=now,
            updated_at=now,
            started_at=None,
            finished_at=None,
            expires_at=now + self.config.retention_seconds,
            results=results,
            destinations=tuple(sub.destinations),
            meta=dict(sub.meta),
        )
        try:
            stored, created = self._store.insert(job, max_queued=self.config.queue_size)
        except QueueFull:
            self._blobs.delete_prefix(jobblobs.prefix(job_id))
            raise self._queue_full(self.config.queue_size) from None
        except BaseException:
            self._blobs.delete_prefix(jobblobs.prefix(job_id))
            raise
        if not created:  # the same idempotency key won a race
            self._blobs.delete_prefix(jobblobs.prefix(job_id))
            return stored
        self._bus.publish(JobEvent.of(stored))
        self._queue.notify(stored)
        return stored

    def _check_destinations(self, sub: Submission) -> None:
        for dest in sub.destinations:
            if dest.blob not in DESTINATION_BLOBS:
                raise InvalidInput(
                    f"an output destination uploads one of {', '.join(DESTINATION_BLOBS)}, "
                    f"not {dest.blob!r}"
                )
            net.validate_url(dest.url, self._policy)
        _check_meta(sub.meta)

    def _check_depth(self) -> None:
        depth = self._store.counts()[JobStatus.QUEUED]
        if depth >= self.config.queue_size:
            raise self._queue_full(depth)

    def _queue_full(self, depth: int) -> QueueFull:
        per_job = self._processing.mean(default=2.0)
        wait = depth * per_job / max(1, self._queue.workers)
        return QueueFull(
            f"the job queue is full ({self.config.queue_size} waiting)",
            retry_after=float(min(60, max(1, round(wait)))),
            hint="retry after the indicated delay",
        )

    def run_sync(self, sub: Submission, timeout: float) -> Job:
        """Submit and wait up to ``timeout`` seconds. The job is returned as it is then: the
        caller checks ``job.terminal`` (an unfinished job keeps running)."""
        return self.wait(self.submit(sub).id, timeout)

    def wait(self, job_id: str, timeout: float) -> Job:
        """The job once it is terminal, or as it is after ``timeout`` seconds."""
        return self._waiters.wait(job_id, timeout, lambda: self.get(job_id))

    # -- reading ------------------------------------------------------------------------------

    def get(self, job_id: str, owner: str | None = None) -> Job:
        job = self._store.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            raise JobNotFound(f"no job {job_id}")
        return job

    def list(self, owner: str | None = None, limit: int = 50) -> builtins.list[Job]:
        return self._store.list_jobs(owner=owner, limit=max(1, min(limit, 1000)))

    def open_blob(self, job: Job, name: str) -> tuple[BlobRef, bytes]:
        ref = job.results.get(name)
        if ref is None:
            raise ResultNotFound(f"job {job.id} has no {name!r} result")
        return ref, self._blobs.get(ref.key)

    def download_url(self, job: Job, name: str) -> str | None:
        """A pre-signed URL for the blob when the store can make one (S3), else None."""
        ref = job.results.get(name)
        if ref is None:
            raise ResultNotFound(f"job {job.id} has no {name!r} result")
        presign = getattr(self._blobs, "presigned_url", None)
        return str(presign(ref.key)) if callable(presign) else None

    @property
    def blobs(self) -> BlobStore:
        """The blob store, for features that keep their own records beside the jobs'
        (under a key prefix of their own: the cleaner only sweeps ``jobs/``)."""
        return self._blobs

    def subscribe(self, job_id: str, owner: str | None = None) -> EventStream:
        self.get(job_id, owner)
        return EventStream(job_id, self._bus, lambda: self._store.get(job_id))

    # -- changing -----------------------------------------------------------------------------

    def cancel(self, job_id: str, owner: str | None = None) -> Job:
        job = self.get(job_id, owner)
        if job.terminal:
            raise JobConflict(f"job {job_id} already {job.status.value}")
        now = self._clock()
        job = self._store.transition(
            job_id,
            JobStatus.CANCELED,
            results={},
            finished_at=now,
            expires_at=now + self.config.retention_seconds,
        )
        self._blobs.delete_prefix(jobblobs.prefix(job_id))
        self._bus.publish(JobEvent.of(job))
        if self._webhooks is not None:
            self._webhooks.dispatch(job)
        self._settled(job)
        return job

    def apply_effects(
        self,
        job_id: str,
        options: Options,
        owner: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Job:
        """A new, already succeeded job: ``job_id``'s stored original and matte rendered with
        ``options`` (no model run). ``meta`` is stored on it (the parent's is not copied)."""
        parent = self.get(job_id, owner)
        meta = dict(meta or {})
        _check_meta(meta)
        child = effects.render(
            parent,
            options,
            self._blobs,
            now=self._clock(),
            retention=self.config.retention_seconds,
        )
        if meta:
            child = dataclasses.replace(child, meta=meta)
        try:
            self._store.insert(child)
        except BaseException:
            self._blobs.delete_prefix(jobblobs.prefix(child.id))
            raise
        return child

    def register_webhook_payload(self, name: str, render: PayloadFn) -> None:
        """Webhooks of jobs whose ``meta["webhook_payload"]`` is ``name`` post ``render(job)``
        instead of the default payload (signed and retried the same way). Call before start."""
        if self._webhooks is not None:
            self._webhooks.register_payload(name, render)

    # -- running ------------------------------------------------------------------------------

    def _execute(self, job_id: str) -> None:
        runner.execute(job_id, self.deps)

    def _timed_out(self, job_id: str) -> None:
        limit = self.config.job_timeout
        message = f"the job ran longer than the limit of {limit:g} seconds"
        runner.fail(job_id, self.deps, JobTimedOut.code, message, expect=JobStatus.PROCESSING)

    def _settled(self, job: Job) -> None:
        if job.finished_at is not None:
            self._latency.observe(job.finished_at - job.created_at)
            if job.started_at is not None and job.status is not JobStatus.CANCELED:
                self._processing.observe(job.finished_at - job.started_at)
            if job.status is JobStatus.SUCCEEDED:
                for stage, recorder in self._stages.items():
                    if stage in job.timings:
                        recorder.observe(job.timings[stage])
        self._waiters.wake(job.id)

    def clean(self) -> None:
        """One pass of retention cleanup (the cleaner thread calls this periodically)."""
        now = self._clock()
        maintenance.clean_expired(self._store, self._blobs, now)
        maintenance.sweep_orphans(self._store, self._blobs, now, self.config.orphan_grace)

    def stats(self) -> ServiceStats:
        counts = self._store.counts()
        return ServiceStats(
            counts={s.value: n for s, n in counts.items()},
            queue_depth=counts[JobStatus.QUEUED],
            queue_size=self.config.queue_size,
            workers=self._queue.workers,
            workers_busy=self._queue.busy,
            latency=self._latency.histogram(),
            processing=self._processing.histogram(),
            recent=self._latency.recent(),
            stages={stage: r.histogram() for stage, r in self._stages.items()},
            queues=self._depths(),
        )

    def _depths(self) -> dict[str, int]:
        if self._queue_depths is None:
            return {}
        try:
            return dict(self._queue_depths())
        except Exception as exc:  # a broker that is down must not break /metrics
            self._log(f"reading the queue depths failed: {exc!r}")
            return {}

    def health(self) -> dict[str, str]:
        """Each backend server's state: ``"ok"`` or what went wrong (empty when embedded)."""
        out: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                check()
            except Exception as exc:
                out[name] = f"error: {type(exc).__name__}: {exc}"[:300]
            else:
                out[name] = "ok"
        return out

    def ready(self) -> bool:
        loaded = set(self._segmenters.loaded())
        warm = self._kernels_warm and set(self.config.warm_models) <= loaded
        return self._started and not self._stopped and warm

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        if self.config.job_threads is not None:
            # Several jobs at once keep the cores busy; OpenCV splitting each one's resizes
            # and filters across threads only adds overhead (process-wide, restored at stop).
            self._library_threads = parallel.library_threads(self.config.job_threads)
        if self.config.recover:
            report = maintenance.recover(self.deps, self.config.max_attempts)
            if report.requeued or report.failed or report.queued:
                self._log(
                    f"recovered jobs: {report.requeued} re-queued, {report.failed} failed "
                    f"(interrupted), {report.queued} waiting"
                )
        if self._webhooks is not None:
            self._webhooks.start()
            if self.config.recover:
                self._webhooks.redeliver_pending()
        self._warmup.start()
        self._queue.start()
        self._cleaner.start()

    def _warm(self) -> None:
        if not self._kernels_warm:
            try:
                pipeline.warm_up()
            except Exception as exc:
                self._log(f"compiling the refinement loops failed: {exc}")
            else:
                self._kernels_warm = True
        for name in self.config.warm_models:
            try:
                self._segmenters.get(name)
            except Exception as exc:
                self._log(f"loading model {name!r} failed: {exc}")

    def stop(self, timeout: float = 10) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        end = time.monotonic() + timeout
        self._queue.stop(timeout)
        self._cleaner.stop(max(0.0, end - time.monotonic()))
        if self._webhooks is not None:
            self._webhooks.stop(max(0.0, end - time.monotonic()))
        if self._warmup.is_alive():
            self._warmup.join(max(0.0, end - time.monotonic()))
        if self._library_threads is not None:
            parallel.library_threads(self._library_threads)
        self._store.close()
        self._blobs.close()


def _check_meta(meta: Mapping[str, Any]) -> None:
    try:
        size = len(json.dumps(dict(meta), separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"job metadata must be JSON data: {exc}") from None
    if size > MAX_META_BYTES:
        raise InvalidInput(f"job metadata is {size} bytes as JSON; at most {MAX_META_BYTES}")
