from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from cleancut.jobs.events import EventStream, InMemoryEventBus
from cleancut.jobs.model import JobEvent, JobStatus
from tests.jobs.records import job_record

S = JobStatus


def _progress(p: float) -> JobEvent:
    return JobEvent("j", "progress", S.PROCESSING, "inference", p)


def _complete() -> JobEvent:
    return JobEvent("j", "complete", S.SUCCEEDED, None, 1.0, {"results": {}})


async def _collect(stream: EventStream) -> list[JobEvent]:
    return [e async for e in stream]


def test_worker_thread_events_reach_the_subscriber_in_order() -> None:
    bus = InMemoryEventBus()
    current = job_record()

    async def main() -> list[JobEvent]:
        stream = EventStream("j", bus, lambda: current)
        first = await stream.__anext__()  # registers, then reads the current state

        def worker() -> None:
            bus.publish(JobEvent("j", "state", S.PROCESSING))
            for i in range(1, 4):
                bus.publish(_progress(i / 4))
            bus.publish(_complete())
            bus.publish(_progress(0.99))  # after the final event: never delivered

        thread = threading.Thread(target=worker)
        thread.start()
        rest = await _collect(stream)
        thread.join()
        return [first, *rest]

    events = asyncio.run(main())
    kinds = [e.kind for e in events]
    assert kinds[0] == "state" and events[0].status is S.QUEUED
    assert kinds[1] == "state" and events[1].status is S.PROCESSING
    assert kinds[-1] == "complete"
    progress = [e.progress for e in events if e.kind == "progress"]
    assert progress == sorted(progress) and progress[-1] == 0.75
    assert bus.subscriber_count() == 0  # the stream unsubscribed at its end


def test_late_subscriber_gets_the_final_state_at_once() -> None:
    bus = InMemoryEventBus()
    done = replace(job_record(S.FAILED), error_code="corrupt_image", error_message="bad")
    events = asyncio.run(_collect(EventStream("j", bus, lambda: done)))
    assert [(e.kind, e.data["code"]) for e in events] == [("error", "corrupt_image")]
    canceled = asyncio.run(_collect(EventStream("j", bus, lambda: job_record(S.CANCELED))))
    assert [(e.kind, e.status) for e in canceled] == [("state", S.CANCELED)]
    gone = asyncio.run(_collect(EventStream("j", bus, lambda: None)))
    assert gone == []


def test_slow_subscriber_never_blocks_and_keeps_state_and_final_events() -> None:
    bus = InMemoryEventBus(buffer_size=4)

    async def main() -> list[JobEvent]:
        stream = EventStream("j", bus, lambda: job_record())
        await stream.__anext__()
        # The loop is busy in this coroutine: the publisher runs to the end without waiting.
        publisher = threading.Thread(target=_flood, args=(bus,))
        publisher.start()
        publisher.join()
        return await _collect(stream)

    events = asyncio.run(main())
    assert events[0].kind == "state" and events[0].status is S.PROCESSING
    assert events[-1].kind == "complete"
    assert len(events) <= 6  # thousands of progress events were coalesced
    progress = [e.progress for e in events if e.kind == "progress"]
    assert progress == sorted(progress)


def _flood(bus: InMemoryEventBus) -> None:
    bus.publish(JobEvent("j", "state", S.PROCESSING))
    for i in range(5000):
        bus.publish(_progress(i / 5000))
    bus.publish(_complete())


def test_stale_events_from_before_the_snapshot_are_skipped() -> None:
    bus = InMemoryEventBus()
    running = replace(job_record(S.PROCESSING), stage="inference", progress=0.5)

    async def main() -> list[JobEvent]:
        stream = EventStream("j", bus, lambda: running)
        first = await stream.__anext__()
        bus.publish(JobEvent("j", "state", S.PROCESSING))  # duplicate of the snapshot
        bus.publish(_progress(0.3))  # older than the snapshot
        bus.publish(_progress(0.7))
        bus.publish(_complete())
        return [first, *await _collect(stream)]

    events = asyncio.run(main())
    assert [(e.kind, e.progress) for e in events] == [
        ("state", 0.5),
        ("progress", 0.7),
        ("complete", 1.0),
    ]


def test_publish_after_the_loop_closed_is_harmless() -> None:
    bus = InMemoryEventBus()
    loop = asyncio.new_event_loop()
    bus.subscribe("j", loop)
    loop.close()
    bus.publish(_progress(0.5))
    bus.publish(_complete())


def test_aclose_unsubscribes_early() -> None:
    bus = InMemoryEventBus()

    async def main() -> None:
        async with EventStream("j", bus, lambda: job_record()) as stream:
            await stream.__anext__()
            assert bus.subscriber_count("j") == 1
        assert bus.subscriber_count("j") == 0

    asyncio.run(main())
