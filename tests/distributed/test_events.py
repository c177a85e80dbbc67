"""Job events across processes on Redis pub/sub: what one bus publishes, another node's
subscribers get; a lost connection is re-established and watched jobs are re-read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from cleancut.jobs.distributed.events import RedisEventBus, decode, encode
from cleancut.jobs.events import EventStream
from cleancut.jobs.model import Job, JobEvent, JobStatus
from tests.distributed.conftest import new_job

S = JobStatus


def test_events_round_trip_as_json() -> None:
    event = JobEvent("j", "complete", S.SUCCEEDED, None, 1.0, {"results": {"cutout": {"size": 3}}})
    assert decode(encode(event)) == event


@pytest.fixture
def jobs() -> dict[str, Job]:
    return {}


@pytest.fixture
def buses(redis_url: str, namespace: str, jobs: dict[str, Job]) -> Iterator[list[RedisEventBus]]:
    made = [
        RedisEventBus(redis_url, namespace=namespace, snapshot=jobs.get),  # API node A
        RedisEventBus(redis_url, namespace=namespace, snapshot=jobs.get),  # API node B
        RedisEventBus(redis_url, namespace=namespace),  # a worker: publishes only
    ]
    yield made
    for bus in made:
        bus.close()


async def _collect(stream: EventStream, count: int) -> list[JobEvent]:
    out = []
    async with stream:
        async for event in stream:
            out.append(event)
            if len(out) == count:
                break
    return out


def test_a_worker_event_reaches_subscribers_on_every_node(
    buses: list[RedisEventBus], jobs: dict[str, Job]
) -> None:
    a, b, worker = buses
    job = new_job(S.PROCESSING)
    jobs[job.id] = job

    async def scenario() -> tuple[list[JobEvent], list[JobEvent]]:
        streams = [EventStream(job.id, bus, lambda: jobs.get(job.id)) for bus in (a, b)]
        firsts = [await s.__anext__() for s in streams]  # subscribed, then the snapshot
        assert all(e.status is S.PROCESSING for e in firsts)
        worker.publish(JobEvent(job.id, "progress", S.PROCESSING, "inference", 0.5))
        worker.publish(JobEvent(job.id, "complete", S.SUCCEEDED, None, 1.0, {"results": {}}))
        return await asyncio.wait_for(
            asyncio.gather(_collect(streams[0], 2), _collect(streams[1], 2)), 10
        )

    got_a, got_b = asyncio.run(scenario())
    for got in (got_a, got_b):
        assert [e.kind for e in got] == ["progress", "complete"]
        assert got[-1].status is S.SUCCEEDED


def test_other_namespaces_are_not_heard(redis_url: str, buses: list[RedisEventBus]) -> None:
    a, _, _ = buses
    stranger = RedisEventBus(redis_url, namespace="someone-else")
    try:

        async def scenario() -> None:
            sub = a.subscribe("j1", asyncio.get_running_loop())
            stranger.publish(JobEvent("j1", "progress", S.PROCESSING, "x", 0.1))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(sub.get(), 0.5)
            a.unsubscribe(sub)

        asyncio.run(scenario())
    finally:
        stranger.close()


def test_after_a_lost_connection_watched_jobs_get_their_current_state(
    redis_url: str, buses: list[RedisEventBus], jobs: dict[str, Job]
) -> None:
    a, _, worker = buses
    job = new_job(S.PROCESSING)
    jobs[job.id] = job
    admin = redis.Redis.from_url(redis_url)

    async def scenario() -> list[JobEvent]:
        stream = EventStream(job.id, a, lambda: jobs.get(job.id))
        await stream.__anext__()
        # The connection drops; meanwhile the job finishes (its events are lost with it).
        reconnects = a.reconnects
        admin.client_kill_filter(_type="pubsub")
        jobs[job.id] = new_job(S.SUCCEEDED, id=job.id)
        worker.publish(JobEvent(job.id, "complete", S.SUCCEEDED, None, 1.0))
        deadline = time.monotonic() + 10
        while a.reconnects == reconnects and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return await asyncio.wait_for(_collect(stream, 1), 10)

    try:
        got = asyncio.run(scenario())
    finally:
        admin.close()
    assert got[-1].status is S.SUCCEEDED and got[-1].final


def test_publishing_never_raises_when_redis_is_gone(namespace: str) -> None:
    logs: list[str] = []
    bus = RedisEventBus("redis://127.0.0.1:1/0", namespace=namespace, log=logs.append)
    bus.publish(JobEvent("j", "progress", S.PROCESSING, "x", 0.1))
    bus.publish(JobEvent("j", "progress", S.PROCESSING, "x", 0.2))
    assert len(logs) == 1 and "dropped" in logs[0]
    with pytest.raises(redis.RedisError):
        bus.ping()
    bus.close()
