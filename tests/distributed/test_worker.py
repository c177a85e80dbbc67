"""The worker runtime in-process, on the real PostgreSQL, S3 (moto), Redis and Celery app:
claims, fencing of runs that lost their job, the reaper's sweep and job timeouts."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cleancut.core.models import ModelRegistry, ModelSpec
from cleancut.core.predict import ModelPool, Segmenter
from cleancut.core.runtimes import RuntimeConfig
from cleancut.core.types import F32
from cleancut.core.weights import WeightsCache
from cleancut.jobs import blobs as jobblobs
from cleancut.jobs.distributed import celery_app
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.events import RedisEventBus
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.distributed.service import open_blobs
from cleancut.jobs.distributed.worker import WorkerRuntime
from cleancut.jobs.model import CUTOUT, MASK, ORIGINAL, Job, JobStatus
from cleancut.net import NetPolicy
from cleancut.storage import BlobStore
from tests import tinymodels
from tests.distributed.conftest import new_job

S = JobStatus


def png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(tinymodels.square_image()).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class Gate:
    """Makes inference wait until released; counts runs."""

    block: bool = False
    runs: int = 0
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Session:
    gate: Gate
    inner: Any

    @property
    def runtime(self) -> str:
        return str(self.inner.runtime)

    def run(self, batch: F32) -> F32:
        self.gate.runs += 1
        if self.gate.block:
            self.gate.entered.set()
            assert self.gate.release.wait(30), "the test never released inference"
        out: F32 = self.inner.run(batch)
        return out


@dataclass
class GatedPool:
    inner: ModelPool
    gate: Gate

    def get(self, name: str) -> Segmenter:
        seg = self.inner.get(name)
        return dataclasses.replace(seg, session=_Session(self.gate, seg.session))

    def loaded(self) -> list[str]:
        return self.inner.loaded()


@pytest.fixture
def model_pool(tiny_spec: ModelSpec, tmp_path: Path) -> ModelPool:
    return ModelPool(
        ModelRegistry([tiny_spec]), WeightsCache(tmp_path / "cache"), RuntimeConfig("onnxruntime")
    )


@dataclass
class Rig:
    config: DistributedConfig
    store: PgJobStore
    blobs: BlobStore
    bus: RedisEventBus
    app: Any
    pool: ModelPool
    logs: list[str] = field(default_factory=list)

    def runtime(self, name: str, gate: Gate | None = None, **changes: Any) -> WorkerRuntime:
        config = dataclasses.replace(self.config, **changes)
        return WorkerRuntime(
            config,
            self.store,
            self.blobs,
            self.bus,
            GatedPool(self.pool, gate or Gate()),
            NetPolicy(),
            self.app,
            name=name,
            queues=[config.queue("tiny")],
            concurrency=1,
            log=self.logs.append,
        )

    def submit(self, **kw: Any) -> Job:
        job = new_job(created_at=time.time(), **kw)
        ref = jobblobs.save_original(self.blobs, job.id, png())
        stored, _ = self.store.insert(dataclasses.replace(job, results={ORIGINAL: ref}))
        return stored


@pytest.fixture
def rig(config: DistributedConfig, store: PgJobStore, model_pool: ModelPool) -> Iterator[Rig]:
    blobs = open_blobs(config)
    bus = RedisEventBus(config.events_url, namespace=config.namespace)
    app = celery_app.make_celery(config)
    yield Rig(config, store, blobs, bus, app, model_pool)
    bus.close()
    blobs.close()


def test_a_job_runs_once_however_often_it_is_delivered(rig: Rig) -> None:
    job = rig.submit()
    gate = Gate()
    workers = [rig.runtime("w1", gate), rig.runtime("w2", gate)]
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda w=w: outcomes.append(w.handle(job.id))) for w in workers * 3
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("succeeded") == 1, outcomes
    assert gate.runs == 1
    done = rig.store.get(job.id)
    assert done is not None and done.status is S.SUCCEEDED and done.attempts == 1
    assert {CUTOUT, MASK, ORIGINAL} <= set(done.results)
    for ref in done.results.values():
        assert rig.blobs.stat(ref.key).etag == ref.etag
    assert workers[0].handle(job.id) == "skipped (succeeded)"
    assert workers[0].handle("no-such-job") == "gone"


def test_a_run_that_lost_its_job_leaves_the_winners_results_alone(rig: Rig) -> None:
    job = rig.submit()
    slow = Gate(block=True)
    first = rig.runtime("w1", slow)
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(first.handle(job.id)))
    thread.start()
    assert slow.entered.wait(30)
    # w1 looks dead (no heartbeat for a lease): the reaper re-queues, w2 runs the job.
    later = time.time() + 100
    assert rig.store.requeue_stale(job.id, 1, before=later, now=later) is not None
    assert rig.runtime("w2").handle(job.id) == "succeeded"
    won = rig.store.get(job.id)
    assert won is not None and won.attempts == 2
    slow.release.set()  # w1 wakes up: it must neither settle the job nor touch its blobs
    thread.join(30)
    assert outcome == ["succeeded"]  # what the store says now, not what w1 did
    after = rig.store.get(job.id)
    assert after == won
    assert rig.store.worker_of(job.id) == "w2"
    for ref in won.results.values():
        assert rig.blobs.stat(ref.key).etag == ref.etag


def test_the_sweep_requeues_silent_jobs_then_gives_up(rig: Rig) -> None:
    worker = rig.runtime("w1", max_attempts=2)
    queue = rig.config.queue("tiny")
    job = rig.submit()
    rig.store.claim(job.id, time.time() - 60, "dead-worker")  # heartbeat a minute old
    found = worker.tick()
    assert found.requeued == 1
    back = rig.store.get(job.id)
    assert back is not None and back.status is S.QUEUED and back.attempts == 1
    assert celery_app.queue_depth(rig.app, queue) == 1  # published again
    rig.store.claim(job.id, time.time() - 60, "dead-again")  # attempt 2 of 2, also silent
    found = worker.tick()
    assert found.failed == 1
    failed = rig.store.get(job.id)
    assert failed is not None and failed.status is S.FAILED
    assert failed.error_code == "interrupted"
    assert failed.error_message is not None and "stopped responding" in failed.error_message
    assert list(rig.blobs.iter_keys(jobblobs.prefix(job.id))) == []  # failed: blobs dropped


def test_the_sweep_publishes_lost_messages_again(rig: Rig) -> None:
    worker = rig.runtime("w1", redeliver_after=60.0)
    queue = rig.config.queue("tiny")
    job = rig.submit()
    assert rig.store.mark_enqueued(job.id, float("inf"), time.time() - 120)
    assert worker.tick().republished == 1
    assert worker.tick().republished == 0  # once per period
    assert celery_app.queue_depth(rig.app, queue) == 1
    assert worker.handle(job.id) == "succeeded"


def test_a_backlog_is_not_published_twice(rig: Rig) -> None:
    worker = rig.runtime("w1", redeliver_after=60.0)
    job = rig.submit()
    celery_app.publish(rig.app, rig.config, "another-job", "tiny")  # still waiting
    assert rig.store.mark_enqueued(job.id, float("inf"), time.time() - 120)
    assert worker.tick().republished == 0
    assert celery_app.queue_depth(rig.app, rig.config.queue("tiny")) == 1


def test_a_job_past_its_timeout_fails_and_keeps_nothing(rig: Rig) -> None:
    gate = Gate(block=True)
    worker = rig.runtime("w1", gate, job_timeout=0.2)
    job = rig.submit()
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(worker.handle(job.id)))
    thread.start()
    assert gate.entered.wait(30)
    time.sleep(0.3)  # past the 0.2 s limit
    worker.tick()
    gate.release.set()
    thread.join(30)
    done = rig.store.get(job.id)
    assert done is not None and done.status is S.FAILED and done.error_code == "job_timeout"
    assert outcome == ["failed"]
    assert list(rig.blobs.iter_keys(jobblobs.prefix(job.id))) == []


def test_workers_show_in_the_live_list(rig: Rig) -> None:
    worker = rig.runtime("w1")
    worker.start()
    try:
        assert rig.store.live_workers(time.time() - 10) == (1, 0)
    finally:
        worker.stop()
    assert rig.store.live_workers(0.0) == (0, 0)
