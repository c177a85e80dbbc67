"""Threads waiting for jobs to finish (``JobService.wait`` / ``run_sync``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cleancut.jobs.model import Job


class Waiters:
    def __init__(self, poll: float = 1.0) -> None:
        self._poll = poll
        self._lock = threading.Lock()
        self._events: dict[str, list[threading.Event]] = {}

    def wake(self, job_id: str) -> None:
        with self._lock:
            events = list(self._events.get(job_id, ()))
        for event in events:
            event.set()

    def wait(self, job_id: str, timeout: float, read: Callable[[], Job]) -> Job:
        """Re-read the job whenever it is settled (``wake``) or every ``poll`` seconds, for
        paths that do not wake (another process), until terminal or ``timeout``."""
        event = threading.Event()
        with self._lock:
            self._events.setdefault(job_id, []).append(event)
        end = time.monotonic() + timeout
        try:
            while True:
                job = read()
                left = end - time.monotonic()
                if job.terminal or left <= 0:
                    return job
                event.wait(min(left, self._poll))
                event.clear()
        finally:
            with self._lock:
                events = self._events.get(job_id, [])
                if event in events:
                    events.remove(event)
                if not events:
                    self._events.pop(job_id, None)
