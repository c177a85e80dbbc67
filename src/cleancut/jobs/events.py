"""Job events from worker threads to asyncio subscribers (SSE), without ever blocking a worker.

``publish`` may be called from any thread. Each subscriber owns a small buffer guarded by a
lock; the worker appends and schedules at most one wake-up on the subscriber's event loop
(``loop.call_soon_threadsafe``), so a stalled loop cannot pile up callbacks. When a buffer is
full, progress events are coalesced (the newest replaces the last buffered one) or dropped;
state and final events are always kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from cleancut.jobs.model import Job, JobEvent, JobStatus


class Subscription(Protocol):
    job_id: str

    async def get(self) -> JobEvent: ...


class EventBus(Protocol):
    def publish(self, event: JobEvent) -> None:
        """Hand ``event`` to the job's subscribers. Thread-safe; never blocks on them."""
        ...

    def subscribe(self, job_id: str, loop: asyncio.AbstractEventLoop) -> Subscription: ...

    def unsubscribe(self, sub: Subscription) -> None: ...


class _Subscriber:
    def __init__(self, job_id: str, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.job_id = job_id
        self._loop = loop
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._buffer: deque[JobEvent] = deque()
        self._wake_pending = False
        self._ready = asyncio.Event()

    def push(self, event: JobEvent) -> None:
        """Any thread."""
        with self._lock:
            last = self._buffer[-1] if self._buffer else None
            if event.kind == "progress" and last is not None and last.kind == "progress":
                self._buffer[-1] = event  # coalesce: only the newest progress matters
            elif event.kind == "progress" and len(self._buffer) >= self._maxsize:
                return  # full: drop progress, never state or final events
            else:
                self._buffer.append(event)
            if self._wake_pending:
                return
            self._wake_pending = True
        # RuntimeError: the subscriber's loop is closed; nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._ready.set()

    async def get(self) -> JobEvent:
        """The subscriber's loop only."""
        while True:
            self._ready.clear()
            with self._lock:
                if self._buffer:
                    return self._buffer.popleft()
            await self._ready.wait()


class InMemoryEventBus:
    def __init__(self, buffer_size: int = 64) -> None:
        self._buffer_size = max(4, buffer_size)
        self._lock = threading.Lock()
        self._subs: dict[str, set[_Subscriber]] = {}

    def publish(self, event: JobEvent) -> None:
        with self._lock:
            subs = tuple(self._subs.get(event.job_id, ()))
        for sub in subs:
            sub.push(event)

    def subscribe(self, job_id: str, loop: asyncio.AbstractEventLoop) -> Subscription:
        sub = _Subscriber(job_id, loop, self._buffer_size)
        with self._lock:
            self._subs.setdefault(job_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id)
            if subs is not None and isinstance(sub, _Subscriber):
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.job_id]

    def subscriber_count(self, job_id: str | None = None) -> int:
        with self._lock:
            if job_id is not None:
                return len(self._subs.get(job_id, ()))
            return sum(len(s) for s in self._subs.values())


class EventStream(AsyncIterator[JobEvent]):
    """One subscriber's events for one job: first the job's current state, then what happens
    next, ending after the final event (complete, error, or a canceled state).

    It registers on the bus at the first ``__anext__`` (inside the event loop), before reading
    the current state, so nothing published in between is missed. Use ``async with`` or call
    ``aclose()`` when leaving early.
    """

    def __init__(self, job_id: str, bus: EventBus, snapshot: Callable[[], Job | None]) -> None:
        self.job_id = job_id
        self._bus = bus
        self._snapshot = snapshot
        self._sub: Subscription | None = None
        self._last: JobEvent | None = None
        self._done = False

    async def __anext__(self) -> JobEvent:
        if self._done:
            await self.aclose()
            raise StopAsyncIteration
        if self._sub is None:
            self._sub = self._bus.subscribe(self.job_id, asyncio.get_running_loop())
            job = self._snapshot()
            if job is None:  # deleted meanwhile
                await self.aclose()
                raise StopAsyncIteration
            return self._emit(JobEvent.of(job))
        while True:
            event = await self._sub.get()
            if not self._stale(event):
                return self._emit(event)

    def _stale(self, event: JobEvent) -> bool:
        """Events published before the snapshot was read may arrive after it."""
        last = self._last
        if last is None:
            return False
        if event.kind == "progress":
            return last.status is not JobStatus.PROCESSING or event.progress < last.progress
        return event.kind == "state" and event.status is last.status

    def _emit(self, event: JobEvent) -> JobEvent:
        self._last = event
        self._done = event.final
        return event

    async def aclose(self) -> None:
        self._done = True
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
