"""``cleancut worker``: one inference process consuming its models' Celery queues.

The models are loaded once, before the first message, and stay loaded: the worker uses
Celery's ``threads`` pool (``--concurrency`` threads sharing the one ModelPool; inference
releases the GIL), so a model is never loaded twice per machine-process. ``solo`` runs one job
at a time on the main thread. Prefork is not offered: each child would load its own copy.

A delivery runs a job only after claiming it (queued → processing, attempts + 1) in the store;
a message for a job that is already running, finished or gone is acknowledged and dropped.
Each run sees the store and blobs through a fence on its attempt number (``fence.py``).
A ticker thread writes the heartbeat of the runs in progress, fails those past the job
timeout, keeps this worker's row in the live-workers table and runs the reaper's sweep.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cleancut import net
from cleancut.core import parallel, pipeline
from cleancut.errors import JobTimedOut
from cleancut.jobs import runner
from cleancut.jobs.distributed import celery_app, reaper
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.events import EventBus
from cleancut.jobs.model import JobStatus
from cleancut.jobs.runner import RunnerDeps, SegmenterSource
from cleancut.jobs.webhooks import WebhookDispatcher
from cleancut.storage import BlobStore

LogFn = Callable[[str], None]
POOLS = ("threads", "solo")


def default_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


@dataclasses.dataclass
class _Run:
    attempt: int
    deadline: float  # monotonic; inf without a timeout
    timed_out: bool = False


class WorkerRuntime:
    """Everything a worker does besides talking to the broker (tests drive it directly)."""

    def __init__(
        self,
        config: DistributedConfig,
        store: PgJobStore,
        blobs: BlobStore,
        bus: EventBus,
        segmenters: SegmenterSource,
        policy: net.NetPolicy,
        app: Any,
        *,
        name: str,
        queues: Sequence[str],
        concurrency: int,
        webhooks: WebhookDispatcher | None = None,
        log: LogFn = print,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.app = app
        self.name = name
        self.queues = tuple(queues)
        self.concurrency = concurrency
        self.log = log
        self._clock = clock
        self.deps = RunnerDeps(
            store=store,
            blobs=blobs,
            bus=bus,
            segmenters=segmenters,
            net_policy=policy,
            retention=config.retention_seconds,
            webhooks=webhooks,
            log=log,
            progress_interval=config.progress_interval,
            clock=clock,
            job_threads=parallel.share(concurrency),
        )
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="cleancut-ticker", daemon=True)
        self._ticks = 0
        self.completed = 0

    # -- one delivery -------------------------------------------------------------------------

    def handle(self, job_id: str) -> str:
        """Run the job if this delivery can claim it; returns what happened (for the log)."""
        job = self.store.get(job_id)
        if job is None:
            return "gone"
        if job.status is not JobStatus.QUEUED:
            return f"skipped ({job.status.value})"
        claimed = self.store.claim(job_id, self._clock(), self.name)
        if claimed is None:
            return "skipped (claimed elsewhere)"
        attempt = claimed.attempts
        deps = reaper.fenced_deps(self.deps, self.store, job_id, attempt)
        if attempt > self.config.max_attempts:
            message = f"it was started {attempt} times; the limit is {self.config.max_attempts}"
            runner.fail(job_id, deps, "interrupted", message, expect=JobStatus.PROCESSING)
            return "failed (attempts)"
        timeout = self.config.job_timeout
        deadline = time.monotonic() + timeout if timeout else float("inf")
        with self._lock:
            self._runs[job_id] = _Run(attempt, deadline)
        try:
            done = runner.execute(job_id, deps)
        finally:
            with self._lock:
                self._runs.pop(job_id, None)
                self.completed += 1
        return done.status.value if done is not None else "gone"

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._runs)

    # -- the ticker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._beat()
        self._ticker.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout)
        try:
            self.store.remove_worker(self.name)
        except Exception as exc:
            self.log(f"removing worker {self.name} from the live list failed: {exc!r}")

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.config.heartbeat_seconds):
            try:
                self.tick()
            except Exception as exc:  # the database is down: try again next time
                self.log(f"worker tick failed: {exc!r}")

    def tick(self) -> reaper.Sweep:
        now = self._clock()
        self._beat()
        self._time_out()
        self._ticks += 1
        if self._ticks % 1000 == 0:
            self.store.prune_workers(now - 24 * 3600)
        found = reaper.sweep(self.store, self.deps, self.app, self.config, now, self.log)
        if found.requeued or found.failed or found.republished:
            self.log(
                f"sweep: {found.requeued} silent job(s) queued again, {found.failed} failed, "
                f"{found.republished} message(s) published again"
            )
        return found

    def _beat(self) -> None:
        with self._lock:
            running = {job_id: run.attempt for job_id, run in self._runs.items()}
        now = self._clock()
        if running:
            self.store.heartbeat(running, now)
        self.store.beat_worker(self.name, self.queues, self.concurrency, len(running), now)

    def _time_out(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(j, r) for j, r in self._runs.items() if r.deadline <= now and not r.timed_out]
            for _, run in late:
                run.timed_out = True
        limit = self.config.job_timeout or 0.0
        message = f"the job ran longer than the limit of {limit:g} seconds"
        for job_id, run in late:
            deps = reaper.fenced_deps(self.deps, self.store, job_id, run.attempt)
            runner.fail(job_id, deps, JobTimedOut.code, message, expect=JobStatus.PROCESSING)


def run(
    config: DistributedConfig,
    segmenters: SegmenterSource,
    policy: net.NetPolicy,
    *,
    models: Sequence[str],
    concurrency: int = 1,
    pool: str = "threads",
    name: str | None = None,
    loglevel: str = "INFO",
    log: LogFn = print,
) -> None:
    """Serve ``models`` until SIGTERM/SIGINT (warm shutdown: running jobs finish)."""
    from cleancut.jobs.distributed import migrate
    from cleancut.jobs.distributed.events import RedisEventBus
    from cleancut.jobs.distributed.service import open_blobs

    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}")
    if pool == "solo":
        concurrency = 1
    name = name or default_name()
    queues = [config.queue(m) for m in dict.fromkeys(models)]
    store = PgJobStore(migrate.make_engine(config.database_url, pool_size=concurrency + 2))
    migrate.check(store.engine)
    blobs = open_blobs(config)
    bus = RedisEventBus(config.events_url, namespace=config.namespace, log=log)
    webhooks = WebhookDispatcher(store, policy, threads=config.webhook_threads, log=log)
    app = celery_app.make_celery(config)
    runtime = WorkerRuntime(
        config,
        store,
        blobs,
        bus,
        segmenters,
        policy,
        app,
        name=name,
        queues=queues,
        concurrency=concurrency,
        webhooks=webhooks,
        log=log,
    )

    def run_job(job_id: str) -> str:
        outcome = runtime.handle(job_id)
        log(f"job {job_id}: {outcome}")
        return outcome

    app.task(name=celery_app.TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(
        run_job
    )

    if runtime.deps.job_threads is not None:
        # this process runs jobs only: no restore
        parallel.library_threads(runtime.deps.job_threads)
    pipeline.warm_up()  # compiled loops of refinement, before the first message
    for model in dict.fromkeys(models):  # loaded once, before the first message, kept warm
        segmenters.get(model)
    webhooks.start()
    _redeliver_old_webhooks(store, webhooks, config, log)
    runtime.start()
    log(f"worker {name}: {pool} x{concurrency} on {', '.join(queues)}")
    try:
        app.worker_main(
            [
                "worker",
                f"--hostname={name}",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                f"--queues={','.join(queues)}",
                "--prefetch-multiplier=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--loglevel={loglevel}",
            ]
        )
    finally:
        runtime.stop()
        webhooks.stop()
        bus.close()
        store.close()
        blobs.close()


def _redeliver_old_webhooks(
    store: PgJobStore, webhooks: WebhookDispatcher, config: DistributedConfig, log: LogFn
) -> None:
    """Webhooks a stopped worker left unsettled, once they are clearly nobody's any more."""
    before = time.time() - max(600.0, 4 * config.lease_seconds)
    try:
        pending = [j for j in store.pending_webhooks() if (j.finished_at or 0.0) < before]
    except Exception as exc:
        log(f"reading unsettled webhooks failed: {exc!r}")
        return
    for job in pending:
        webhooks.dispatch(job)
