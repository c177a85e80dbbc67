"""JobService end to end on the tiny brightness model."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cleancut.core import parallel
from cleancut.core.predict import ModelPool
from cleancut.core.types import Background, Options, OutputSpec, Refine
from cleancut.errors import InvalidOptions, JobConflict, JobNotFound, QueueFull, ResultNotFound
from cleancut.jobs.model import CUTOUT, MASK, MATTE, ORIGINAL, JobEvent, JobStatus
from cleancut.jobs.service import JobService, Submission
from tests.jobs.conftest import TINY, CountingPool, Factory, png, wait_for

S = JobStatus


def test_a_job_runs_to_success_with_its_results(
    make_service: Factory, tiny_pool: ModelPool, image: bytes
) -> None:
    svc = make_service(tiny_pool, warm_models=("tiny",))
    job = svc.submit(Submission(TINY, upload=image))
    assert job.status is S.QUEUED
    assert set(job.results) == {ORIGINAL}  # the upload is stored before submit returns
    done = svc.wait(job.id, 30)
    assert done.status is S.SUCCEEDED, done.error_message
    assert (done.attempts, done.progress, done.error_code) == (1, 1.0, None)
    assert {"decode", "inference", "refine", "encode", "total"} <= set(done.timings)
    assert done.started_at is not None and done.finished_at is not None
    assert done.expires_at > done.finished_at

    ref, data = svc.open_blob(done, CUTOUT)
    assert (ref.media_type, ref.filename, ref.size) == ("image/png", f"{job.id}.png", len(data))
    rgba = np.asarray(Image.open(io.BytesIO(data)))
    assert rgba.shape == (150, 200, 4)
    assert rgba[75, 100, 3] == 255 and rgba[5, 5, 3] == 0  # bright box kept, background gone
    ref, mask = svc.open_blob(done, MASK)
    with Image.open(io.BytesIO(mask)) as m:
        assert (m.mode, m.size, ref.media_type) == ("L", (200, 150), "image/png")
    assert svc.open_blob(done, ORIGINAL)[1] == image
    with pytest.raises(ResultNotFound):
        svc.open_blob(done, "thumbnail")
    # A tiny job can finish before the warm-up thread has loaded the compiled refinement
    # loops (about 0.5 s in a fresh process); readiness follows once it has.
    assert wait_for(svc.ready, 10)


def test_output_format_decides_media_type_and_name(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    svc = make_service(pool)
    options = Options(model="tiny", output=OutputSpec(format="jpeg"))
    done = svc.wait(svc.submit(Submission(options, upload=image)).id, 30)
    ref, data = svc.open_blob(done, CUTOUT)
    assert (ref.media_type, ref.filename) == ("image/jpeg", f"{done.id}.jpg")
    assert data.startswith(b"\xff\xd8\xff")


def test_run_sync_get_list_and_owners(make_service: Factory, pool: ModelPool, image: bytes) -> None:
    svc = make_service(pool)
    mine = svc.run_sync(Submission(TINY, upload=image, owner="alice"), timeout=30)
    assert mine.status is S.SUCCEEDED
    theirs = svc.run_sync(Submission(TINY, upload=image, owner="bob"), timeout=30)
    assert svc.get(mine.id, owner="alice") == mine
    assert svc.get(mine.id) == mine  # no owner: auth is off
    with pytest.raises(JobNotFound):
        svc.get(mine.id, owner="bob")
    with pytest.raises(JobNotFound):
        svc.get("0" * 32)
    assert [j.id for j in svc.list(owner="alice")] == [mine.id]
    assert [j.id for j in svc.list()] == [theirs.id, mine.id]
    with pytest.raises(JobNotFound):
        svc.subscribe(mine.id, owner="bob")


def test_idempotency_key_returns_the_same_job(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    svc = make_service(pool, start=False)
    first = svc.submit(Submission(TINY, upload=image, owner="k", idempotency_key="abc"))
    again = svc.submit(Submission(TINY, upload=image, owner="k", idempotency_key="abc"))
    other = svc.submit(Submission(TINY, upload=image, owner="k2", idempotency_key="abc"))
    assert again.id == first.id and other.id != first.id
    assert svc.stats().queue_depth == 2


def test_queue_full_refuses_without_storing_anything(
    make_service: Factory, pool: ModelPool, image: bytes, tmp_path: Path
) -> None:
    svc = make_service(pool, start=False, queue_size=2)
    svc.submit(Submission(TINY, upload=image))
    svc.submit(Submission(TINY, upload=image))
    with pytest.raises(QueueFull) as info:
        svc.submit(Submission(TINY, upload=image))
    assert info.value.retry_after >= 1
    assert info.value.http_status == 503
    stats = svc.stats()
    assert (stats.queue_depth, stats.queue_size, stats.counts["queued"]) == (2, 2, 2)
    assert len(list((tmp_path / "data" / "blobs" / "jobs").iterdir())) == 2


def test_effects_reuse_the_matte_without_the_model(
    make_service: Factory, counting: CountingPool, image: bytes
) -> None:
    svc = make_service(counting)
    parent = svc.run_sync(Submission(TINY, upload=image), timeout=30)
    assert parent.status is S.SUCCEEDED
    runs, gets = counting.runs, counting.gets
    assert runs == 1
    red = Options(model="tiny", background=Background(kind="color", color=(255, 0, 0, 255)))
    child = svc.apply_effects(parent.id, red)
    assert (counting.runs, counting.gets) == (runs, gets)  # the model did not run
    assert (child.status, child.parent_id, child.options) == (S.SUCCEEDED, parent.id, red)
    assert set(child.downloads) == {ORIGINAL, MASK, CUTOUT}
    rgb = np.asarray(Image.open(io.BytesIO(svc.open_blob(child, CUTOUT)[1])).convert("RGBA"))
    assert tuple(rgb[5, 5]) == (255, 0, 0, 255)  # background now red
    assert tuple(rgb[75, 100, :3]) == (235, 230, 225)  # subject untouched
    # the parent's files are unchanged and the child owns copies
    assert svc.open_blob(child, MASK)[1] == svc.open_blob(parent, MASK)[1]
    assert svc.get(child.id) == child
    with pytest.raises(InvalidOptions, match="model"):
        svc.apply_effects(parent.id, Options(model="other"))


def test_effects_re_refine_from_the_model_matte(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    svc = make_service(pool)
    refined_options = replace(TINY, refine=Refine(level=3))
    parent = svc.run_sync(Submission(refined_options, upload=image), timeout=30)
    assert parent.status is S.SUCCEEDED
    assert MATTE in parent.results and MATTE not in parent.downloads  # kept, never offered

    def gray(job_id: str, name: str) -> np.ndarray:
        job = svc.get(job_id)
        return np.asarray(Image.open(io.BytesIO(svc.open_blob(job, name)[1])))

    raw, refined = gray(parent.id, MATTE), gray(parent.id, MASK)
    assert not np.array_equal(raw, refined)
    again = svc.apply_effects(parent.id, refined_options)
    assert np.array_equal(gray(again.id, MASK), refined)  # refined once, not twice
    plain = svc.apply_effects(parent.id, replace(refined_options, refine=Refine(level=0)))
    assert np.array_equal(gray(plain.id, MASK), raw)
    # effects of effects still start from the model's matte
    assert np.array_equal(gray(svc.apply_effects(plain.id, refined_options).id, MASK), refined)


def test_effects_need_a_succeeded_job(make_service: Factory, pool: ModelPool, image: bytes) -> None:
    svc = make_service(pool, start=False)
    queued = svc.submit(Submission(TINY, upload=image))
    with pytest.raises(JobConflict):
        svc.apply_effects(queued.id, TINY)


def test_events_from_queued_to_complete(
    make_service: Factory, counting: CountingPool, image: bytes
) -> None:
    counting.block = True
    svc = make_service(counting, progress_interval=0.0)
    job = svc.submit(Submission(TINY, upload=image))

    async def watch() -> list[JobEvent]:
        events = []
        async for event in svc.subscribe(job.id):
            events.append(event)
            if len(events) == 1:
                counting.release.set()  # the first event is in: let the job go on
        return events

    events = asyncio.run(asyncio.wait_for(watch(), 30))
    assert events[0].kind == "state"
    assert events[-1].kind == "complete"
    assert set(events[-1].data["results"]) == {ORIGINAL, MASK, CUTOUT}
    stages = [e.stage for e in events if e.kind == "progress"]
    assert "inference" in stages and "encode" in stages
    progress = [e.progress for e in events if e.kind != "state"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    late = asyncio.run(asyncio.wait_for(_all(svc.subscribe(job.id)), 30))
    assert [e.kind for e in late] == ["complete"]


async def _all(stream: object) -> list[JobEvent]:
    return [e async for e in stream]  # type: ignore[attr-defined]


def test_stats_count_jobs_and_latency(make_service: Factory, pool: ModelPool, image: bytes) -> None:
    svc = make_service(pool, workers=2)
    for _ in range(3):
        svc.run_sync(Submission(TINY, upload=image), timeout=30)
    stats = svc.stats()
    assert stats.counts["succeeded"] == 3 and stats.workers == 2
    assert stats.latency.count == 3 and stats.processing.count == 3
    assert stats.latency.counts[-1] == 3 and stats.latency.bounds[-1] == float("inf")
    assert len(stats.recent) == 3
    wait_for(lambda: svc.stats().workers_busy == 0)


def test_a_bad_image_fails_the_job_and_drops_its_upload(
    make_service: Factory, pool: ModelPool, tmp_path: Path
) -> None:
    svc = make_service(pool)
    truncated = png()[:120]  # a valid header, then nothing
    done = svc.run_sync(Submission(TINY, upload=truncated), timeout=30)
    assert (done.status, done.error_code) == (S.FAILED, "corrupt_image")
    assert done.results == {}
    assert not (tmp_path / "data" / "blobs" / "jobs" / done.id).exists()


def test_unknown_model_fails_with_its_code(make_service: Factory, pool: ModelPool) -> None:
    svc = make_service(pool)
    done = svc.run_sync(Submission(Options(model="nope"), upload=png()), timeout=30)
    assert (done.status, done.error_code) == (S.FAILED, "model_not_found")


def test_several_workers_give_each_job_its_share_of_the_cores(
    make_service: Factory, counting: CountingPool, image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "cores", lambda: 8)
    seen: list[tuple[int | None, int]] = []
    counting.on_run = lambda: seen.append((parallel._budget.get(), cv2.getNumThreads()))
    before = cv2.getNumThreads()
    one = make_service(counting, data="one")
    assert svc_done(one, image)
    assert seen == [(None, before)]  # one job at a time: every core, OpenCV untouched
    one.stop(10)
    two = make_service(counting, data="two", workers=2)
    assert svc_done(two, image)
    assert seen[1:] == [(4, 4)]  # two at a time on 8 cores: 4 threads each, OpenCV too
    two.stop(10)
    assert cv2.getNumThreads() == before


def svc_done(svc: JobService, image: bytes) -> bool:
    return svc.wait(svc.submit(Submission(TINY, upload=image)).id, 30).status is S.SUCCEEDED
