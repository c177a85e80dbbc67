"""Effects on a finished job without the model: the stored original and matte, new options,
a new (already succeeded) job with its own copies of the blobs."""

from __future__ import annotations

import time

from cleancut.core import io
from cleancut.core.result import Result
from cleancut.core.types import Options
from cleancut.errors import InvalidOptions, JobConflict, ResultNotFound
from cleancut.jobs import blobs as jobblobs
from cleancut.jobs.model import (
    CUTOUT,
    MASK,
    MATTE,
    ORIGINAL,
    BlobRef,
    Job,
    JobStatus,
    new_job_id,
)
from cleancut.storage import BlobStore


def render(parent: Job, options: Options, blobs: BlobStore, *, now: float, retention: float) -> Job:
    """The child job of ``parent`` rendered with ``options``; its blobs are saved, its record
    is not (the caller inserts it)."""
    if parent.status is not JobStatus.SUCCEEDED:
        raise JobConflict(f"job {parent.id} is {parent.status.value}; effects need a finished job")
    if options.model != parent.options.model:
        raise InvalidOptions(
            f"effects reuse the matte of model {parent.options.model!r}; "
            f"changing the model needs a new job"
        )
    for name in (ORIGINAL, MASK):
        if name not in parent.results:
            raise ResultNotFound(f"job {parent.id} has no stored {name} (expired?)")
    started = time.perf_counter()
    original = blobs.get(parent.results[ORIGINAL].key)
    # The model's own matte when it was kept (refinement or source alpha changed the mask).
    matte_png = blobs.get(parent.results.get(MATTE, parent.results[MASK]).key)
    image = io.decode(original, max_pixels=options.max_pixels)
    decoded = time.perf_counter()
    model_matte = jobblobs.decode_mask(matte_png)
    result = Result.from_mask(image, model_matte, options, model=parent.options.model)
    cutout = result.encode()
    encoded = time.perf_counter()
    child_id = new_job_id()
    results: dict[str, BlobRef] = {
        ORIGINAL: jobblobs.save_original(blobs, child_id, original),
        MASK: jobblobs.save_mask(blobs, child_id, result.alpha),
        CUTOUT: jobblobs.save_cutout(blobs, child_id, cutout, options.output.format),
    }
    if result.alpha is not result.model_matte:
        results[MATTE] = jobblobs.save(
            blobs, child_id, MATTE, matte_png, "image/png", f"{child_id}-matte.png"
        )
    timings = {
        "decode": decoded - started,
        "encode": encoded - decoded,
        "total": time.perf_counter() - started,
    }
    return Job(
        id=child_id,
        status=JobStatus.SUCCEEDED,
        options=options,
        source_url=None,
        owner=parent.owner,
        idempotency_key=None,
        webhook=None,
        parent_id=parent.id,
        created_at=now,
        updated_at=now,
        started_at=now,
        finished_at=now,
        expires_at=now + retention,
        attempts=0,
        progress=1.0,
        results=results,
        timings=timings,
    )
