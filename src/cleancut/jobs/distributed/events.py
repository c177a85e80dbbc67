"""Job events across processes on Redis pub/sub, behind the ``EventBus`` Protocol.

Workers ``publish`` each event to the job's channel (``<namespace>:events:<job id>``). Every API
node keeps one pattern subscription (``<namespace>:events:*``) on a listener thread and hands
what arrives to its local subscribers through an ``InMemoryEventBus``, so SSE on any node
streams a job that runs on any worker. The subscription is confirmed before the bus reports
ready, so a stream that subscribes and then reads the job's state misses nothing in between.

Redis pub/sub keeps nothing for absent listeners: while the connection is down, events are
lost. After reconnecting, the listener therefore re-reads every job that has local
subscribers and hands them its current state (``EventStream`` drops what it already saw), so a
stream never waits forever for a final event that fell into the gap. Publishing never raises:
a failed publish is logged (once per outage) and the job goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from cleancut.jobs.events import InMemoryEventBus, Subscription
from cleancut.jobs.model import Job, JobEvent, JobStatus

LogFn = Callable[[str], None]


def encode(event: JobEvent) -> bytes:
    return json.dumps(
        {
            "job_id": event.job_id,
            "kind": event.kind,
            "status": event.status.value,
            "stage": event.stage,
            "progress": event.progress,
            "data": dict(event.data),
        },
        separators=(",", ":"),
    ).encode()


def decode(raw: bytes | str) -> JobEvent:
    data: dict[str, Any] = json.loads(raw)
    return JobEvent(
        job_id=str(data["job_id"]),
        kind=data["kind"],
        status=JobStatus(data["status"]),
        stage=data.get("stage"),
        progress=float(data.get("progress", 0.0)),
        data=data.get("data") or {},
    )


def redis_client(url: str) -> Any:
    """A client that fails fast (a worker must not stall on a Redis that is down)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 1),
    )


class RedisEventBus:
    def __init__(
        self,
        url: str,
        *,
        namespace: str = "cleancut",
        snapshot: Callable[[str], Job | None] | None = None,
        buffer_size: int = 64,
        log: LogFn | None = None,
    ) -> None:
        self._redis = redis_client(url)
        self._prefix = f"{namespace}:events:"
        self._snapshot = snapshot
        self._local = InMemoryEventBus(buffer_size)
        self._log = log or (lambda _msg: None)
        self._lock = threading.Lock()
        self._jobs: Counter[str] = Counter()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._publish_failing = False
        self.reconnects = 0

    def channel(self, job_id: str) -> str:
        return f"{self._prefix}{job_id}"

    # -- EventBus -----------------------------------------------------------------------------

    def publish(self, event: JobEvent) -> None:
        from redis.exceptions import RedisError

        try:
            self._redis.publish(self.channel(event.job_id), encode(event))
        except RedisError as exc:
            if not self._publish_failing:
                self._log(f"publishing job events to Redis failed (dropped until it is up): {exc}")
            self._publish_failing = True
            return
        if self._publish_failing:
            self._log("publishing job events to Redis works again")
        self._publish_failing = False

    def subscribe(self, job_id: str, loop: asyncio.AbstractEventLoop) -> Subscription:
        self.start()
        with self._lock:
            self._jobs[job_id] += 1
        return self._local.subscribe(job_id, loop)

    def unsubscribe(self, sub: Subscription) -> None:
        self._local.unsubscribe(sub)
        with self._lock:
            self._jobs[sub.job_id] -= 1
            if self._jobs[sub.job_id] <= 0:
                del self._jobs[sub.job_id]

    # -- the listener -------------------------------------------------------------------------

    def start(self, wait: float = 5.0) -> bool:
        """Start listening (once); True when the subscription is live within ``wait`` s."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="cleancut-events", daemon=True
                )
                self._thread.start()
        return self._ready.wait(wait)

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    def _listen(self) -> None:
        from redis.exceptions import RedisError

        delay, first = 0.1, True
        while not self._stop.is_set():
            pubsub = self._redis.pubsub()
            try:
                pubsub.psubscribe(f"{self._prefix}*")
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        if not first:
                            self.reconnects += 1
                            self._log("job events: subscribed to Redis again")
                            self._resync()
                        first, delay = False, 0.1
                        self._ready.set()
                    elif message["type"] == "pmessage":
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                if self._ready.is_set():
                    self._log(f"job events: lost Redis ({exc}); reconnecting")
                self._ready.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    pubsub.close()

    def _deliver(self, raw: bytes) -> None:
        try:
            event = decode(raw)
        except (ValueError, KeyError, TypeError) as exc:
            self._log(f"job events: dropped a malformed event: {exc!r}")
            return
        self._local.publish(event)

    def _resync(self) -> None:
        """Events published while disconnected are gone: hand each watched job's state."""
        if self._snapshot is None:
            return
        with self._lock:
            watched = list(self._jobs)
        for job_id in watched:
            try:
                job = self._snapshot(job_id)
            except Exception as exc:
                self._log(f"job events: re-reading job {job_id} failed: {exc!r}")
                continue
            if job is not None:
                self._local.publish(JobEvent.of(job))

    def ping(self) -> None:
        self._redis.ping()

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(5)
        self._redis.close()
