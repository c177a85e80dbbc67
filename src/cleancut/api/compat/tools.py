"""The self-hosted tools API: ``/api/v1/tools/remove-background`` (+ ``/effects``), its SSE
progress at ``/api/v1/jobs/{jobId}/progress`` and the files at ``/api/v1/download``.

Phase 1 uploads a file and answers ``202 {jobId, async: true}``; the SSE stream sends
``event: progress`` frames ``{phase: "processing", stage, percent}`` and ends with
``{phase: "complete", percent: 100, result}`` (or ``phase: "failed"`` with ``error``). Phase 2
re-renders effects from the cached matte and original (``service.apply_effects``: no model run).
Job ids are written as UUIDs. Every route needs the API key when the server has keys.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cleancut.api import sse
from cleancut.api.auth import Caller
from cleancut.api.compat import Vendor
from cleancut.api.compat.tools_files import check_name, files, render_effects, tools_job, url
from cleancut.api.compat.tools_progress import frames
from cleancut.api.compat.tools_settings import (
    META_KEY,
    EffectsSettings,
    RemoveSettings,
    display_name,
    effect_options,
    error_responses,
    nobg_name,
    original_name,
    removal_options,
    render_error,
    tools_meta,
)
from cleancut.api.compat.uuid_ids import as_uuid
from cleancut.api.context import ApiContext, missing, validate_body
from cleancut.api.downloads import blob_response, disposition
from cleancut.api.uploads import check_image, read_multipart
from cleancut.core.io import sniff_format
from cleancut.errors import InvalidInput, InvalidOptions, ResultNotFound
from cleancut.jobs.blobs import INPUT_TYPES
from cleancut.jobs.model import CUTOUT
from cleancut.jobs.service import Submission
from cleancut.net import NetPolicy

PREFIXES = ("/api/v1/tools", "/api/v1/jobs", "/api/v1/download")
JobIdPath = Annotated[str, Path(max_length=64, description="the job id (a UUID)")]
_MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "settings": RemoveSettings.model_json_schema(),
                    },
                },
                "encoding": {"settings": {"contentType": "application/json"}},
            }
        },
    }
}
_EFFECTS_MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["settings"],
                    "properties": {
                        "settings": EffectsSettings.model_json_schema(),
                        "backgroundImage": {"type": "string", "format": "binary"},
                    },
                },
                "encoding": {"settings": {"contentType": "application/json"}},
            }
        },
    }
}


def vendor(ctx: ApiContext, policy: NetPolicy) -> Vendor:
    del policy  # the tools API takes uploads only
    service = ctx.service
    router = APIRouter(responses=error_responses(400, 401, 429, 500))

    @router.post(
        "/api/v1/tools/remove-background",
        status_code=202,
        responses=error_responses(404, 413, 503),
        openapi_extra=_MULTIPART,
        summary="Remove the background (multipart file + settings JSON): 202 {jobId, async}",
    )
    async def remove_background(request: Request, client: Caller) -> JSONResponse:
        parts = await read_multipart(request, ctx.upload_limit)
        file = parts.get("file")
        if file is None:
            raise missing("file", "no image file provided (a multipart field 'file')")
        upload = check_image(file.data, ctx.upload_limit)
        settings: RemoveSettings = _settings(RemoveSettings, parts.get("settings"))
        fmt = sniff_format(upload[:512]) or ""
        filename = display_name(file.filename, INPUT_TYPES.get(fmt, ("", "bin"))[1])
        options = ctx.core_options(removal_options(settings))
        info = _removal_meta(ctx, settings, filename, options.model)
        sub = Submission(options=options, upload=upload, owner=client.owner, meta={META_KEY: info})
        job = await run_in_threadpool(service.submit, sub)
        return JSONResponse({"jobId": as_uuid(job.id), "async": True}, status_code=202)

    @router.get(
        "/api/v1/jobs/{job_id}/progress",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "SSE: event: progress, data {phase, stage, percent}; the last "
                "has phase complete and the result (or phase failed and error)",
                "content": {sse.MEDIA_TYPE: {"schema": {"type": "string"}}},
            },
            **error_responses(404),
        },
        summary="Follow a job (Server-Sent Events)",
    )
    async def progress(job_id: JobIdPath, client: Caller) -> StreamingResponse:
        job = await run_in_threadpool(tools_job, service, job_id, client.owner)
        stream = await run_in_threadpool(service.subscribe, job.id, client.owner)
        body = frames(stream, ctx, job.id, client.owner)
        return StreamingResponse(body, media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)

    @router.get(
        "/api/v1/download/{job_id}/{filename:path}",
        response_class=Response,
        responses={
            200: {"description": "The file", "content": {"image/*": {}}},
            **error_responses(404),
        },
        summary="Download one of a job's files (the names its results give)",
    )
    def download(request: Request, job_id: JobIdPath, filename: str, client: Caller) -> Response:
        check_name(filename)
        job = tools_job(service, job_id, client.owner)
        blob = files(job).get(filename)
        if blob is None:
            raise ResultNotFound("file not found")
        ref, data = service.open_blob(job, blob)
        response = blob_response(request, ref, data, attachment=False)
        if response.status_code == 200:
            response.headers["Content-Disposition"] = disposition(filename, attachment=True)
        return response

    @router.post(
        "/api/v1/tools/remove-background/effects",
        responses=error_responses(404, 409, 413),
        openapi_extra=_EFFECTS_MULTIPART,
        summary="Re-apply effects from the cached mask (no model run): {jobId, downloadUrl}",
    )
    async def effects(request: Request, client: Caller) -> JSONResponse:
        parts = await read_multipart(request, ctx.upload_limit)
        part = parts.get("settings")
        if part is None:
            raise missing("settings", "no settings provided")
        settings: EffectsSettings = _settings(EffectsSettings, part)
        parent = await run_in_threadpool(tools_job, service, settings.jobId, client.owner)
        info = tools_meta(parent.meta)
        assert info is not None
        if original_name(settings.filename) != original_name(info["filename"]):
            raise ResultNotFound(f"job {settings.jobId} has no file {settings.filename!r}")
        bg = parts.get("backgroundImage")
        image = check_image(bg.data, ctx.upload_limit, "backgroundImage") if bg else None
        public = effect_options(settings, model=parent.options.model)
        options = ctx.core_options(public, background_image=image)
        child = await run_in_threadpool(
            render_effects, service, parent, options, info["filename"], client.owner
        )
        link = url(child, nobg_name(info["filename"], settings.extension))
        size = child.results[CUTOUT].size
        return JSONResponse({"jobId": settings.jobId, "downloadUrl": link, "processedSize": size})

    return Vendor(
        name="tools",
        router=router,
        prefixes=PREFIXES,
        render_error=render_error,
        tag="compat: tools",
    )


def _removal_meta(
    ctx: ApiContext, settings: RemoveSettings, filename: str, model: str
) -> dict[str, Any]:
    """What phase 1 keeps on its job: the file name, and the effects to render once done
    (checked now, so a bad colour is a 400 here rather than a failed stream later)."""
    info: dict[str, Any] = {"kind": "removal", "filename": filename}
    if not settings.plain():
        if settings.backgroundType == "image":
            raise InvalidOptions(
                "backgroundType 'image' needs a backgroundImage file: send it to "
                "/api/v1/tools/remove-background/effects after this job"
            )
        ctx.core_options(effect_options(settings, model=model))
        info["effects"] = settings.model_dump(exclude_none=True, exclude={"model"})
    return info


def _settings(model: type[Any], part: Any) -> Any:
    if part is None:
        return validate_body(model, {}, "settings")
    try:
        raw = json.loads(part.text()) if part.text().strip() else {}
    except json.JSONDecodeError:
        raise InvalidInput("settings must be valid JSON") from None
    return validate_body(model, raw, "settings")
