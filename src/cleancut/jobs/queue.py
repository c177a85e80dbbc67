"""The JobQueue Protocol and the embedded worker pool.

The job store is the durable queue: workers claim the oldest queued row atomically
(``JobStore.claim_next``), so the pool itself holds no jobs and loses none on a crash. A
condition variable wakes idle workers on submit; they also poll now and then, for rows that
arrived another way. A watchdog calls ``on_timeout`` for jobs running past ``job_timeout``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from cleancut.jobs.model import Job
from cleancut.jobs.store import JobStore

LogFn = Callable[[str], None]


class JobQueue(Protocol):
    @property
    def workers(self) -> int: ...

    @property
    def busy(self) -> int: ...

    def start(self) -> None: ...

    def notify(self, job: Job | None = None) -> None:
        """``job`` was queued: wake a worker (or publish it to one)."""
        ...

    def stop(self, timeout: float = 10) -> None:
        """Stop claiming; wait up to ``timeout`` for running jobs to finish."""
        ...


class LocalWorkerPool:
    def __init__(
        self,
        store: JobStore,
        handler: Callable[[Job], None],
        *,
        workers: int = 1,
        job_timeout: float | None = None,
        on_timeout: Callable[[str], None] | None = None,
        poll_interval: float = 2.0,
        log: LogFn | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if workers < 1:
            raise ValueError("the pool needs at least one worker")
        self._store = store
        self._handler = handler
        self._count = workers
        self._timeout = job_timeout
        self._on_timeout = on_timeout
        self._poll = poll_interval
        self._log = log or (lambda _msg: None)
        self._clock = clock
        self._cond = threading.Condition()
        self._signals = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._running: dict[str, float] = {}  # job id -> monotonic deadline (inf: none)

    @property
    def workers(self) -> int:
        return self._count

    @property
    def busy(self) -> int:
        with self._cond:
            return len(self._running)

    def start(self) -> None:
        with self._cond:
            if self._threads:
                return
            self._stopping = False
            self._threads = [
                threading.Thread(target=self._work, name=f"cleancut-worker-{i}", daemon=True)
                for i in range(self._count)
            ]
            if self._timeout is not None and self._on_timeout is not None:
                self._threads.append(
                    threading.Thread(target=self._watch, name="cleancut-watchdog", daemon=True)
                )
        for thread in self._threads:
            thread.start()

    def notify(self, job: Job | None = None) -> None:
        with self._cond:
            self._signals += 1
            self._cond.notify_all()

    def stop(self, timeout: float = 10) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        end = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
            if thread.is_alive():
                self._log(f"{thread.name} is still running a job after stop()")

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                seen = self._signals
            job = self._claim()
            if job is None:
                with self._cond:
                    if not self._stopping and self._signals == seen:
                        self._cond.wait(self._poll)
                continue
            self._run(job)

    def _claim(self) -> Job | None:
        try:
            return self._store.claim_next(self._clock())
        except Exception as exc:  # a locked or broken database must not kill the worker
            self._log(f"claiming a job failed: {exc!r}")
            return None

    def _run(self, job: Job) -> None:
        deadline = time.monotonic() + self._timeout if self._timeout else float("inf")
        with self._cond:
            self._running[job.id] = deadline
            self._cond.notify_all()  # the watchdog picks up the new deadline
        try:
            self._handler(job)
        except BaseException as exc:  # the handler settles its job; this is a last resort
            self._log(f"worker handler crashed on job {job.id}: {exc!r}")
        finally:
            with self._cond:
                self._running.pop(job.id, None)

    def _watch(self) -> None:
        assert self._on_timeout is not None
        fired: set[str] = set()
        while True:
            with self._cond:
                if self._stopping:
                    return
                fired &= set(self._running)
                now = time.monotonic()
                late = [j for j, d in self._running.items() if d <= now and j not in fired]
                pending = [d for j, d in self._running.items() if j not in fired and d > now]
                if not late:
                    self._cond.wait(min(pending, default=now + self._poll) - now)
                    continue
            for job_id in late:
                fired.add(job_id)
                try:
                    self._on_timeout(job_id)
                except Exception as exc:
                    self._log(f"timing out job {job_id} failed: {exc!r}")
