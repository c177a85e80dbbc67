"""Server-Sent Events for one job: its current state first, then progress, then one final
``complete`` or ``error`` event (a canceled job ends with an ``error`` whose code is
``canceled``). Comment lines keep idle connections alive through proxies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from cleancut.api.schemas import DOWNLOADS
from cleancut.jobs.model import JobEvent, JobStatus
from cleancut.jobs.service import EventStream

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_PATHS = {name: path for path, name in DOWNLOADS.items()}


def event_payload(event: JobEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name and JSON data for one job event."""
    body: dict[str, Any] = {
        "id": event.job_id,
        "status": event.status.value,
        "stage": event.stage,
        "progress": round(event.progress, 4),
        "percent": int(event.progress * 100),
    }
    if event.kind == "complete":
        base = f"/v1/jobs/{event.job_id}"
        results = dict(event.data.get("results", {}))
        body["results"] = {
            name: {**info, "url": f"{base}/{_PATHS.get(name, name)}"}
            for name, info in results.items()
        }
        body["timings"] = dict(event.data.get("timings", {}))
        return "complete", body
    if event.kind == "error":
        body.update(code=event.data.get("code"), message=event.data.get("message"))
        return "error", body
    if event.status is JobStatus.CANCELED:
        body.update(code="canceled", message="the job was canceled")
        return "error", body
    return event.kind, body


def frame(name: str, data: dict[str, Any], seq: int) -> bytes:
    return f"id: {seq}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def stream_events(stream: EventStream, heartbeat: float) -> AsyncIterator[bytes]:
    seq = itertools.count(1)

    async def render(event: JobEvent) -> bytes:
        name, data = event_payload(event)
        return frame(name, data, next(seq))

    return pumped(stream, heartbeat, render)


async def pumped(
    stream: EventStream, heartbeat: float, render: Callable[[JobEvent], Awaitable[bytes]]
) -> AsyncIterator[bytes]:
    """``retry:`` first, then ``render(event)`` for each event up to the final one, with a
    keep-alive comment after each ``heartbeat`` seconds of silence; closes the stream at the end."""
    queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in stream:
                await queue.put(event)
        finally:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        yield b"retry: 3000\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                return
            yield await render(event)
            if event.final:
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        with contextlib.suppress(Exception):
            await stream.aclose()
