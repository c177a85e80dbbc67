"""The tools API's progress stream: ``event: progress`` frames built on ``service.subscribe``.

Every frame is ``event: progress``; the data is ``{phase: "processing", stage, percent}`` while
the job runs, then ``{phase: "complete", percent: 100, result}`` or ``{phase: "failed",
percent, error}`` (``error`` is ``"Canceled"`` for a canceled job), each also carrying the
vendor's ``jobId`` and ``type: "single"``. Comment lines keep idle connections open. Effects
asked for in phase 1 are rendered when the complete frame is built (an effects job of its own).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from cleancut.api.compat.tools_files import render_effects, url
from cleancut.api.compat.tools_settings import (
    RemoveSettings,
    effect_options,
    mask_name,
    nobg_name,
    original_name,
    tools_meta,
)
from cleancut.api.compat.uuid_ids import as_uuid
from cleancut.api.context import ApiContext
from cleancut.api.sse import pumped
from cleancut.jobs.model import CUTOUT, ORIGINAL, JobEvent, JobStatus
from cleancut.jobs.service import EventStream

#: Our stages as the vendor's progress text.
STAGES = {
    "queued": "Waiting in queue...",
    "processing": "Starting...",
    "decode": "Loading image...",
    "inference": "Removing background...",
    "refine": "Refining edges...",
    "encode": "Encoding result...",
    "save": "Saving result...",
    "fetch": "Downloading image...",
    "upload": "Uploading result...",
}


def _result(ctx: ApiContext, job_id: str, owner: str | None) -> dict[str, Any]:
    """The complete frame's ``result``; phase 1 effects are rendered here, once it is done."""
    service = ctx.service
    job = service.get(job_id, owner)
    info = tools_meta(job.meta)
    assert info is not None
    filename = info["filename"]
    original = job.results[ORIGINAL]
    processed = job.results[CUTOUT]
    if info.get("kind") == "effects":
        root = service.get(str(info.get("root")), owner)
        mask_url = url(root, mask_name(filename))
        download = url(job, nobg_name(filename, job.options.output.format))
    else:
        mask_url = download = url(job, mask_name(filename))
        asked = info.get("effects")
        if isinstance(asked, Mapping):
            effects = RemoveSettings.model_validate(asked)
            public = effect_options(effects, model=job.options.model)
            child = render_effects(service, job, ctx.core_options(public), filename, owner)
            download = url(child, nobg_name(filename, effects.extension))
            processed = child.results[CUTOUT]
    return {
        "jobId": as_uuid(job.id),
        "downloadUrl": download,
        "maskUrl": mask_url,
        "originalUrl": url(job, original_name(filename)),
        "originalSize": original.size,
        "processedSize": processed.size,
        "filename": filename,
        "model": job.options.model,
    }


def _frame(data: dict[str, Any]) -> bytes:
    return f"event: progress\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _final(ctx: ApiContext, event: JobEvent, owner: str | None) -> dict[str, Any]:
    tail = {"jobId": as_uuid(event.job_id), "type": "single"}
    percent = int(event.progress * 100)
    if event.kind == "complete":
        try:
            result = await run_in_threadpool(_result, ctx, event.job_id, owner)
        except Exception as exc:  # expired meanwhile, effects refused ...
            message = getattr(exc, "message", None) or "the result is not available"
            return {"phase": "failed", "percent": percent, "error": message, **tail}
        return {"phase": "complete", "percent": 100, "result": result, **tail}
    if event.status is JobStatus.CANCELED:
        return {"phase": "failed", "percent": percent, "error": "Canceled", **tail}
    message = event.data.get("message") or "Processing failed"
    code = event.data.get("code")
    return {"phase": "failed", "percent": percent, "error": message, "code": code, **tail}


def frames(
    stream: EventStream, ctx: ApiContext, job_id: str, owner: str | None
) -> AsyncIterator[bytes]:
    async def render(event: JobEvent) -> bytes:
        if event.final:
            return _frame(await _final(ctx, event, owner))
        stage = event.stage if event.status is JobStatus.PROCESSING else event.status.value
        data = {
            "phase": "processing",
            "stage": STAGES.get(stage or "processing", "Processing..."),
            "percent": min(99, int(event.progress * 100)),
            "jobId": as_uuid(job_id),
            "type": "single",
        }
        return _frame(data)

    return pumped(stream, ctx.heartbeat, render)
