"""Webhook delivery for finished jobs, on its own threads, through ``cleancut.net.deliver``
(HMAC-signed, SSRF-checked, bounded retries with exponential backoff).

A delivery never touches the job's status: whatever happens, the job stays as it finished.
Each delivery's attempts are appended to the job's log; a delivery the server's shutdown
interrupts stays unsettled and is sent again by ``redeliver_pending`` at the next start.

The body is :func:`payload` unless the job's ``meta[PAYLOAD_KEY]`` names a renderer registered
with :meth:`WebhookDispatcher.register_payload` (a vendor API posting its own object shape); the
signature, retries and log are the same either way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cleancut import net
from cleancut.jobs.model import TERMINAL, Delivery, Job
from cleancut.jobs.store import JobStore

LogFn = Callable[[str], None]
Deliver = Callable[..., list[net.DeliveryAttempt]]
Links = Callable[[Job], Mapping[str, str]]
#: Renders the JSON body of a finished job's webhook.
PayloadFn = Callable[[Job], Mapping[str, Any]]
#: The job ``meta`` key naming the registered payload renderer for its webhook.
PAYLOAD_KEY = "webhook_payload"


def default_links(job: Job) -> dict[str, str]:
    """Relative links of the native API (``/v1``) for a job and its downloads."""
    base = f"/v1/jobs/{job.id}"
    paths = {"cutout": "result", "mask": "mask", "original": "original"}
    links = {"job": base, "events": f"{base}/events"}
    links.update({paths.get(n, n): f"{base}/{paths.get(n, n)}" for n in job.downloads})
    return links


def payload(job: Job, links: Links = default_links) -> dict[str, Any]:
    error = None
    if job.error_code is not None:
        error = {"code": job.error_code, "message": job.error_message}
    return {
        "type": f"job.{job.status.value}",
        "id": job.id,
        "status": job.status.value,
        "parent_id": job.parent_id,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "results": {
            name: {
                "media_type": ref.media_type,
                "size": ref.size,
                "etag": ref.etag,
                "filename": ref.filename,
            }
            for name, ref in job.downloads.items()
        },
        "timings": dict(job.timings),
        "error": error,
        "links": dict(links(job)),
    }


class _Stopped(Exception):
    """Raised from the backoff sleep when the dispatcher stops."""


class WebhookDispatcher:
    def __init__(
        self,
        store: JobStore,
        policy: net.NetPolicy,
        *,
        threads: int = 2,
        links: Links = default_links,
        deliver: Deliver = net.deliver,
        log: LogFn | None = None,
    ) -> None:
        self._store = store
        self._policy = policy
        self._links = links
        self._deliver = deliver
        self._log = log or (lambda _msg: None)
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._inflight: set[str] = set()
        self._threads = [
            threading.Thread(target=self._loop, name=f"cleancut-hook-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        self._started = False
        self._payloads: dict[str, PayloadFn] = {}

    def register_payload(self, name: str, render: PayloadFn) -> None:
        """Jobs whose ``meta[PAYLOAD_KEY]`` is ``name`` are posted as ``render(job)``. Register
        before ``start`` (redelivered jobs need their renderer too)."""
        with self._lock:
            self._payloads[name] = render

    def body(self, job: Job) -> Mapping[str, Any]:
        """The webhook body of ``job``: its registered renderer's, or the default payload
        (also when the named renderer is not registered in this process)."""
        name = job.meta.get(PAYLOAD_KEY) if isinstance(job.meta, Mapping) else None
        with self._lock:
            render = self._payloads.get(name) if isinstance(name, str) else None
        if render is None:
            if name is not None:
                self._log(f"no webhook payload {name!r} registered; job {job.id} gets the default")
            return payload(job, self._links)
        return render(job)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for thread in self._threads:
            thread.start()

    def dispatch(self, job: Job) -> None:
        """Deliver ``job``'s webhook (if any) in the background. Never raises."""
        if job.webhook is None or job.status not in TERMINAL:
            return
        with self._lock:
            if self._stop.is_set() or job.id in self._inflight:
                return
            self._inflight.add(job.id)
        self._queue.put(job)

    def redeliver_pending(self) -> int:
        jobs = self._store.pending_webhooks()
        for job in jobs:
            self.dispatch(job)
        return len(jobs)

    def idle(self) -> bool:
        with self._lock:
            return not self._inflight

    def stop(self, timeout: float = 10) -> None:
        """Backoff sleeps end at once; an attempt in flight ends within the policy's timeouts
        (or is abandoned after ``timeout``: the delivery stays pending for the next start)."""
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        if not self._started:
            return
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if not self._stop.is_set():
                    self._run(job)
            finally:
                with self._lock:
                    self._inflight.discard(job.id)

    def _run(self, job: Job) -> None:
        assert job.webhook is not None
        # Each attempt is logged as it ends, so the job shows a delivery that is still retrying.
        recorded: list[Delivery] = []

        def record(attempts: Sequence[net.DeliveryAttempt], *, done: bool) -> None:
            log = tuple(
                Delivery(a.attempt, a.at, a.status_code, a.error, a.ok, a.duration)
                for a in attempts
            )
            recorded.extend(log)
            try:
                self._store.add_deliveries(job.id, log, done=done)
            except Exception as exc:
                self._log(f"recording webhook deliveries of job {job.id} failed: {exc!r}")

        try:
            self._deliver(
                job.webhook,
                self.body(job),
                self._policy,
                sleep=self._sleep,
                on_attempt=lambda attempt: record([attempt], done=False),
            )
        except _Stopped:
            self._log(f"webhook of job {job.id} interrupted by shutdown; redelivered on start")
            return
        except Exception as exc:  # a spec that can never be delivered (forbidden URL ...)
            code = getattr(exc, "code", type(exc).__name__)
            record([net.DeliveryAttempt(1, time.time(), 0.0, error=f"{code}: {exc}")], done=False)
        record([], done=True)
        if recorded and not recorded[-1].ok:
            self._log(f"webhook of job {job.id} failed after {len(recorded)} attempt(s)")
