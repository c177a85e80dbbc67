"""The API node's side of the queue: publish a job's id to its model's Celery queue.

An API node runs no jobs. ``notify`` publishes; when that fails (the broker is down), the job
is already durable in PostgreSQL and marked for the workers' reaper, which publishes it again
as soon as a sweep reaches the broker. ``workers``/``busy`` come from the live-workers table;
``depths`` from the broker (messages waiting per queue).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from cleancut.jobs.distributed import celery_app
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.events import RedisEventBus
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.model import Job

LogFn = Callable[[str], None]


class DistributedQueue:
    def __init__(
        self,
        app: Any,
        config: DistributedConfig,
        store: PgJobStore,
        bus: RedisEventBus,
        models: Callable[[], Iterable[str]],
        *,
        log: LogFn | None = None,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 2.0,
    ) -> None:
        self.app = app
        self._config = config
        self._store = store
        self._bus = bus
        self._models = models
        self._log = log or (lambda _msg: None)
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._workers: tuple[float, int, int] = (float("-inf"), 0, 0)
        self._depths: tuple[float, dict[str, int]] = (float("-inf"), {})

    # -- JobQueue -----------------------------------------------------------------------------

    def _live(self) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            at, total, busy = self._workers
        if now - at > self._cache_seconds:
            try:
                since = self._clock() - 2 * self._config.lease_seconds
                total, busy = self._store.live_workers(since)
            except Exception as exc:
                self._log(f"reading the live workers failed: {exc!r}")
            with self._lock:
                self._workers = (now, total, busy)
        return total, busy

    @property
    def workers(self) -> int:
        return self._live()[0]

    @property
    def busy(self) -> int:
        return self._live()[1]

    def start(self) -> None:
        if not self._bus.start():
            self._log("job events: Redis is not reachable yet; SSE follows once it is")

    def notify(self, job: Job | None = None) -> None:
        if job is None:
            return
        try:
            celery_app.publish(self.app, self._config, job.id, job.options.model)
        except Exception as exc:
            self._log(f"publishing job {job.id} failed ({exc!r}); the workers publish it again")
            try:  # an enqueued_at in the past makes the next sweep publish it
                self._store.mark_enqueued(job.id, float("inf"), 0.0)
            except Exception as inner:
                self._log(f"marking job {job.id} for a later publish failed: {inner!r}")

    def stop(self, timeout: float = 10) -> None:
        self._bus.close()
        self.app.close()  # the producer's broker connections

    # -- probes -------------------------------------------------------------------------------

    def ping(self) -> None:
        celery_app.ping(self.app)

    def depths(self) -> dict[str, int]:
        """Messages waiting per model queue (the registry's models), at most a couple of
        seconds old: scrapes and probes do not each ask the broker."""
        now = time.monotonic()
        with self._lock:
            at, cached = self._depths
        if now - at <= self._cache_seconds:
            return dict(cached)
        out: dict[str, int] = {}
        for model in self._models():
            name = self._config.queue(model)
            out[name] = celery_app.queue_depth(self.app, name)
        with self._lock:
            self._depths = (now, out)
        return dict(out)
