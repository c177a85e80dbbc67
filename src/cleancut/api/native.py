"""The native ``/v1`` API: jobs, their events and downloads, effects, and the sync shortcut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cleancut.api import sse
from cleancut.api.auth import Caller
from cleancut.api.context import ApiContext, error_for_code, validate_body
from cleancut.api.downloads import blob_response, disposition
from cleancut.api.errors import responses
from cleancut.api.intake import read_submission, request_body
from cleancut.api.schemas import DOWNLOADS, EffectsRequest, JobList, JobOut, job_out
from cleancut.api.uploads import read_json
from cleancut.errors import JobConflict, JobTimedOut
from cleancut.jobs.model import CUTOUT, Job, JobStatus
from cleancut.jobs.service import JobService
from cleancut.net import NetPolicy

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the job's id")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="a retried submission with the same key returns the same job",
    ),
]
_IMAGE = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}


def _presigned(ctx: ApiContext, job: Job, name: str, attachment: bool) -> Response | None:
    """With ``presigned_downloads``, inline downloads go straight to the object store.
    Attachments stay here: a pre-signed URL cannot set our Content-Disposition."""
    if not ctx.settings.server.presigned_downloads or attachment:
        return None
    url = ctx.service.download_url(job, name)
    return RedirectResponse(url, status_code=307) if url else None


def build_router(ctx: ApiContext, policy: NetPolicy) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=responses(401, 422, 429, 500))
    service = ctx.service

    @router.post(
        "/jobs",
        status_code=202,
        response_model=JobOut,
        responses=responses(400, 404, 413, 415, 503),
        openapi_extra=request_body("JobCreate"),
        summary="Submit a job: a multipart upload (file, options) or JSON with a url",
    )
    async def create_job(
        request: Request, client: Caller, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        intake = await read_submission(request, ctx, client, policy, idempotency_key)
        job = await run_in_threadpool(service.submit, intake.submission)
        body = job_out(job, reveal_secret=intake.secret_generated)
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=202,
            headers={"Location": body.links.job},
        )

    @router.get("/jobs", response_model=JobList, summary="Your most recent jobs")
    def list_jobs(client: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JobList:
        return JobList(jobs=[job_out(j) for j in service.list(client.owner, limit)])

    @router.get(
        "/jobs/{job_id}", response_model=JobOut, responses=responses(404), summary="A job's state"
    )
    def get_job(job_id: JobId, client: Caller) -> JobOut:
        return job_out(service.get(job_id, client.owner))

    @router.delete(
        "/jobs/{job_id}",
        response_model=JobOut,
        responses=responses(404, 409),
        summary="Cancel a job that has not finished",
    )
    def cancel_job(job_id: JobId, client: Caller) -> JobOut:
        return job_out(service.cancel(job_id, client.owner))

    @router.get(
        "/jobs/{job_id}/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: state, progress, then complete or error",
                "content": {sse.MEDIA_TYPE: {"schema": {"type": "string"}}},
            },
            **responses(404),
        },
        summary="Stream the job's progress (SSE); late subscribers get the current state first",
    )
    async def job_events(job_id: JobId, client: Caller) -> StreamingResponse:
        stream = await run_in_threadpool(service.subscribe, job_id, client.owner)
        return StreamingResponse(
            sse.stream_events(stream, ctx.heartbeat),
            media_type=sse.MEDIA_TYPE,
            headers=sse.HEADERS,
        )

    def downloader(kind: str) -> Callable[..., Response]:
        def download(
            request: Request,
            job_id: JobId,
            client: Caller,
            download: Annotated[bool, Query(description="attachment instead of inline")] = False,
        ) -> Response:
            job = service.get(job_id, client.owner)
            if redirect := _presigned(ctx, job, DOWNLOADS[kind], download):
                return redirect
            ref, data = service.open_blob(job, DOWNLOADS[kind])
            return blob_response(request, ref, data, attachment=download)

        download.__name__ = f"download_{kind}"
        return download

    for kind, what in (("result", "the cut-out"), ("mask", "the mask"), ("original", "the upload")):
        router.add_api_route(
            f"/jobs/{{job_id}}/{kind}",
            downloader(kind),
            methods=["GET"],
            response_class=Response,
            responses={
                200: {"description": f"{what.capitalize()}", **_IMAGE},
                304: {"description": "Not modified (If-None-Match)"},
                **responses(404),
            },
            summary=f"Download {what}",
        )

    @router.post(
        "/jobs/{job_id}/effects",
        status_code=201,
        response_model=JobOut,
        responses=responses(400, 404, 409, 413),
        openapi_extra=request_body("EffectsRequest", multipart=False),
        summary="Apply other effects to a finished job's matte (no model run): a new job",
    )
    async def apply_effects(request: Request, job_id: JobId, client: Caller) -> JSONResponse:
        raw = await read_json(request, ctx.json_limit)
        body: EffectsRequest = validate_body(EffectsRequest, raw)
        parent = await run_in_threadpool(service.get, job_id, client.owner)
        options = ctx.core_options(body.options, default_model=parent.options.model)
        job = await run_in_threadpool(service.apply_effects, job_id, options, client.owner)
        out = job_out(job)
        return JSONResponse(
            out.model_dump(mode="json"), status_code=201, headers={"Location": out.links.job}
        )

    @router.post(
        "/remove",
        response_class=Response,
        responses={
            200: {"description": "The encoded result", **_IMAGE},
            **responses(400, 404, 413, 415, 503, 504),
        },
        openapi_extra=request_body("JobCreate"),
        summary="Synchronous shortcut: upload in, image out (same options as jobs)",
    )
    async def remove(
        request: Request, client: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response:
        intake = await read_submission(request, ctx, client, policy, idempotency_key)
        timeout = ctx.settings.server.sync_timeout
        job = await run_in_threadpool(service.run_sync, intake.submission, timeout)
        return await run_in_threadpool(_sync_result, service, job)

    return router


def _sync_result(service: JobService, job: Job) -> Response:
    if not job.terminal:
        raise JobTimedOut(
            "the image was not done within the synchronous time limit",
            hint=f"the job keeps running: poll GET /v1/jobs/{job.id}",
        )
    if job.status is JobStatus.CANCELED:
        raise JobConflict("the job was canceled before it finished")
    if job.status is not JobStatus.SUCCEEDED:
        raise error_for_code(job.error_code or job.status.value, job.error_message)
    ref, data = service.open_blob(job, CUTOUT)
    timings = {k: v for k, v in job.timings.items() if isinstance(v, int | float)}
    headers = {
        "Content-Disposition": disposition(ref.filename, attachment=False),
        "ETag": f'"{ref.etag}"',
        "X-Cleancut-Job-Id": job.id,
        "Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items()),
    }
    for name, seconds in timings.items():
        headers[f"X-Cleancut-{name.capitalize()}-Ms"] = f"{seconds * 1000:.1f}"
    return Response(content=data, media_type=ref.media_type, headers=headers)
