"""``execute(job_id, deps)``: run one claimed job from its input to a terminal state.

Load the input (the uploaded original, or a URL fetched through ``cleancut.net``) → the core
pipeline with a throttled progress callback (which doubles as the cooperative cancellation
check) → encode → save the original, the model's matte and the cut-out → PUT the blobs the
job's destinations name (``net.put``; a failed upload fails the job as
``output_upload_failed``) → succeeded, with timings → publish → webhook. Typed errors fail
the job with their code; anything else fails it as ``internal_error`` with a safe message (the
traceback goes to the log). Only a job that is still ``processing`` is ever settled here, so a
canceled or timed-out job's result is discarded.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from cleancut import net
from cleancut.core import parallel, pipeline
from cleancut.core.predict import Segmenter
from cleancut.errors import CleancutError, JobConflict, OutputUploadFailed
from cleancut.jobs import blobs as jobblobs
from cleancut.jobs.events import EventBus
from cleancut.jobs.model import (
    CUTOUT,
    MASK,
    MATTE,
    ORIGINAL,
    BlobRef,
    Job,
    JobEvent,
    JobStatus,
    complete_data,
)
from cleancut.jobs.store import JobStore
from cleancut.jobs.webhooks import WebhookDispatcher
from cleancut.storage import BlobStore

LogFn = Callable[[str], None]

#: Share of the overall progress each stage starts at, and its weight.
_STAGES: dict[str, tuple[float, float]] = {
    "fetch": (0.0, 0.05),
    "decode": (0.05, 0.1),
    "inference": (0.15, 0.6),
    "refine": (0.75, 0.1),
    "encode": (0.85, 0.1),
    "save": (0.95, 0.03),
    "upload": (0.98, 0.02),
}


class SegmenterSource(Protocol):
    """What the runner needs of ``core.predict.ModelPool``."""

    def get(self, name: str) -> Segmenter: ...

    def loaded(self) -> list[str]: ...


@dataclass(frozen=True)
class RunnerDeps:
    store: JobStore
    blobs: BlobStore
    bus: EventBus
    segmenters: SegmenterSource
    net_policy: net.NetPolicy
    retention: float
    webhooks: WebhookDispatcher | None = None
    log: LogFn = print
    progress_interval: float = 0.2
    #: called once with each job this runner settled (statistics)
    on_settled: Callable[[Job], None] | None = None
    clock: Callable[[], float] = time.time
    #: threads one job's full-resolution work may use (None: every core); a process running
    #: several jobs at once gives each its share (``parallel.share``)
    job_threads: int | None = None


class _Abort(Exception):
    """The job stopped being ``processing`` under us (canceled, timed out)."""


class _Progress:
    def __init__(self, job: Job, deps: RunnerDeps) -> None:
        self._job = job
        self._deps = deps
        self._stage: str | None = None
        self._last = 0.0
        self.value = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        start, weight = _STAGES.get(stage, (self.value, 0.0))
        value = max(self.value, min(1.0, start + weight * min(max(fraction, 0.0), 1.0)))
        now = time.monotonic()
        if stage == self._stage and fraction < 1.0 and now - self._last < self._interval:
            return
        self._stage, self._last, self.value = stage, now, value
        status = self._deps.store.set_progress(self._job.id, stage, value)
        if status is not JobStatus.PROCESSING:
            raise _Abort(status)
        self._deps.bus.publish(JobEvent(self._job.id, "progress", status, stage, value))

    @property
    def _interval(self) -> float:
        return self._deps.progress_interval


def execute(job_id: str, deps: RunnerDeps) -> Job | None:
    """Run the job if it is processing (claimed); returns it as this runner left it."""
    job = deps.store.get(job_id)
    if job is None or job.status is not JobStatus.PROCESSING:
        return job
    deps.bus.publish(JobEvent.of(job))
    try:
        return _run(job, deps)
    except _Abort:
        _discard(job_id, deps)
        return deps.store.get(job_id)
    except CleancutError as exc:
        code, message = exc.code, exc.message
    except Exception:
        deps.log(f"job {job_id} crashed:\n{traceback.format_exc()}")
        code, message = "internal_error", "an internal error stopped this job"
    failed = fail(job_id, deps, code, message, expect=JobStatus.PROCESSING)
    if failed is None:  # canceled or timed out meanwhile: drop what this run wrote
        _discard(job_id, deps)
        return deps.store.get(job_id)
    return failed


def _run(job: Job, deps: RunnerDeps) -> Job:
    started = time.perf_counter()
    progress = _Progress(job, deps)
    results: dict[str, BlobRef] = dict(job.results)
    if job.source_url is not None and ORIGINAL not in results:
        progress("fetch", 0.0)
        fetched = net.fetch(job.source_url, deps.net_policy)
        results[ORIGINAL] = jobblobs.save_original(deps.blobs, job.id, fetched.content)
        data = fetched.content
        progress("fetch", 1.0)
    else:
        data = deps.blobs.get(results[ORIGINAL].key)
    segmenter = deps.segmenters.get(job.options.model)
    with parallel.budget(deps.job_threads):
        result = pipeline.run(data, job.options, segmenter, progress)
        encode_start = time.perf_counter()
        cutout = result.encode(progress=progress)
        encode_time = time.perf_counter() - encode_start
        progress("save", 0.0)
        results[MASK] = jobblobs.save_mask(deps.blobs, job.id, result.alpha)
        if result.model_matte is not result.alpha:
            results[MATTE] = jobblobs.save_mask(deps.blobs, job.id, result.model_matte, MATTE)
    results[CUTOUT] = jobblobs.save_cutout(deps.blobs, job.id, cutout, job.options.output.format)
    timings = {**result.timings.as_dict(), "encode": encode_time}
    if job.destinations:
        timings["upload"] = _upload(job, results, deps, progress)
    timings["total"] = time.perf_counter() - started
    now = deps.clock()
    try:
        done = deps.store.transition(
            job.id,
            JobStatus.SUCCEEDED,
            expect=JobStatus.PROCESSING,
            results=results,
            timings=timings,
            stage=None,
            progress=1.0,
            finished_at=now,
            expires_at=now + deps.retention,
        )
    except JobConflict as exc:
        raise _Abort from exc
    deps.bus.publish(JobEvent(job.id, "complete", done.status, None, 1.0, complete_data(done)))
    _settled(done, deps)
    return done


def _upload(job: Job, results: dict[str, BlobRef], deps: RunnerDeps, progress: _Progress) -> float:
    """PUT each destination's blob (as stored) to its URL, in order; the first failure stops.
    Returns the seconds it took."""
    started = time.perf_counter()
    total = len(job.destinations)
    for i, dest in enumerate(job.destinations):
        progress("upload", i / total)
        host = _host(dest.url)
        ref = results.get(dest.blob)
        if ref is None:
            raise OutputUploadFailed(f"job {job.id} has no {dest.blob} to upload to {host}")
        try:
            net.put(dest.url, deps.blobs.get(ref.key), ref.media_type, deps.net_policy)
        except CleancutError as exc:
            raise OutputUploadFailed(
                f"uploading the {dest.blob} to {host} failed: {exc.message}"
            ) from exc
    progress("upload", 1.0)
    return time.perf_counter() - started


def _host(url: str) -> str:
    """The host (and port) of ``url`` for messages: never the path or a pre-signed query."""
    try:
        return httpx.URL(url).netloc.decode("ascii", "replace") or "the destination"
    except (httpx.InvalidURL, ValueError):
        return "the destination"


def fail(
    job_id: str, deps: RunnerDeps, code: str, message: str, *, expect: JobStatus | None = None
) -> Job | None:
    """Settle a processing (or queued) job as failed and drop its blobs; returns the job, or
    None (changing nothing) when it is not ``expect`` or was already settled elsewhere."""
    now = deps.clock()
    try:
        job = deps.store.transition(
            job_id,
            JobStatus.FAILED,
            expect=expect,
            error_code=code,
            error_message=message,
            results={},
            finished_at=now,
            expires_at=now + deps.retention,
        )
    except JobConflict:
        return None
    _discard(job_id, deps)
    deps.bus.publish(JobEvent.of(job))
    _settled(job, deps)
    return job


def _discard(job_id: str, deps: RunnerDeps) -> None:
    """Blobs of a job that did not succeed are not kept (failed uploads included)."""
    try:
        deps.blobs.delete_prefix(jobblobs.prefix(job_id))
    except Exception as exc:
        deps.log(f"removing the blobs of job {job_id} failed: {exc!r}")


def _settled(job: Job, deps: RunnerDeps) -> None:
    if deps.webhooks is not None:
        deps.webhooks.dispatch(job)
    if deps.on_settled is not None:
        deps.on_settled(job)
