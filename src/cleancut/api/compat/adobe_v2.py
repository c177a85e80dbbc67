"""Adobe Photoshop API v2: ``POST /v2/remove-background`` and ``GET /v2/status/{jobId}``,
answering in Adobe's shapes and its error envelope ``{error_code, message, errors[]}``.

``image.source.url`` is fetched by the worker through the SSRF-safe fetcher (or read from our
storage when it names one of our job blobs, see ``adobe_common``). ``mode`` cutout|mask,
``output.mediaType`` image/png|image/jpeg|image/webp (PNG when left out: the input's format is
not known before the worker fetches it), ``trim``, ``backgroundColor {red, green, blue, alpha}``
(alpha 0..1; JPEG is flattened onto it) and ``colorDecontamination`` 0..1 (edge decontamination
strength). The result stays here: the status lists it as a signed URL that needs no key.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from cleancut.api.auth import Caller
from cleancut.api.compat import Vendor
from cleancut.api.compat import adobe_common as common
from cleancut.api.context import ApiContext
from cleancut.api.errors import ErrorInfo
from cleancut.api.options import BackgroundOptions, RefineOptions, RemovalOptions, RGBAColor
from cleancut.core.types import Options
from cleancut.jobs.model import Job, JobStatus
from cleancut.jobs.service import Submission
from cleancut.net import NetPolicy

PREFIXES = ("/v2/remove-background", "/v2/status", "/v2/outputs")
MediaType = Literal["image/png", "image/jpeg", "image/webp"]
_FORMATS: dict[str, Literal["png", "jpeg", "webp"]] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
}
#: Adobe's ``error_code`` for these statuses; other failures keep cleancut's own code.
_CODES: dict[int, str] = {
    401: "unauthorized",
    403: "access_error",
    429: "rate_limited",
    500: "runtime_error",
}
_LENIENT = ConfigDict(extra="ignore")


class UrlResource(BaseModel):
    model_config = _LENIENT
    url: str = Field(min_length=1, max_length=8192, description="pre-signed GET URL")


class InputImage(BaseModel):
    model_config = _LENIENT
    source: UrlResource


class OutputOptions(BaseModel):
    model_config = _LENIENT
    mediaType: MediaType = "image/png"


class Color(BaseModel):
    model_config = _LENIENT
    red: float = Field(ge=0, le=255)
    green: float = Field(ge=0, le=255)
    blue: float = Field(ge=0, le=255)
    alpha: float = Field(ge=0, le=1, description="0 transparent .. 1 opaque")


class RemoveBackgroundRequest(BaseModel):
    model_config = _LENIENT
    image: InputImage
    mode: Literal["cutout", "mask"] = "cutout"
    output: OutputOptions = Field(default_factory=OutputOptions)
    trim: bool = False
    backgroundColor: Color | None = None
    colorDecontamination: float = Field(default=0, ge=0, le=1)


class JobLinkResponse(BaseModel):
    jobId: str
    statusUrl: str


class Destination(BaseModel):
    url: str


class OutputImage(BaseModel):
    destination: Destination
    mediaType: str


class JobResult(BaseModel):
    outputs: list[OutputImage]


class ErrorDetail(BaseModel):
    errorCode: str
    message: str


class StatusResponse(BaseModel):
    jobId: str
    status: Literal["pending", "running", "succeeded", "failed"]
    createdTime: str
    modifiedTime: str
    result: JobResult | None = None
    error_code: str | None = None
    message: str | None = None
    errorDetails: list[ErrorDetail] | None = None


class ErrorItem(BaseModel):
    code: str
    message: str
    field: str | None = None


class AdobeError(BaseModel):
    error_code: str
    message: str
    errors: list[ErrorItem]


def render_error(info: ErrorInfo) -> Response:
    status = 400 if info.status == 422 else info.status
    item: dict[str, Any] = {"code": info.code, "message": info.message}
    if info.field:
        item["field"] = info.field
    body = {"error_code": _CODES.get(status, info.code), "message": info.message, "errors": [item]}
    return JSONResponse(body, status_code=status, headers=dict(info.headers))


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": AdobeError} for s in (400, 401, 403, 404, 413, 415, 429, 500, 503)
}


def to_options(ctx: ApiContext, body: RemoveBackgroundRequest) -> Options:
    public = RemovalOptions(
        format=_FORMATS[body.output.mediaType],
        mode=body.mode,
        trim=body.trim,
    )
    changes: dict[str, Any] = {}
    if (c := body.backgroundColor) is not None:
        color = RGBAColor(r=c.red, g=c.green, b=c.blue, a=c.alpha)
        changes["background"] = BackgroundOptions(type="color", color=color)
        changes["jpeg_background"] = RGBAColor(r=c.red, g=c.green, b=c.blue)
    if body.colorDecontamination > 0:
        changes["refine"] = RefineOptions(decontaminate=body.colorDecontamination)
    return ctx.core_options(public.model_copy(update=changes))


def vendor(ctx: ApiContext, policy: NetPolicy) -> Vendor:
    del policy  # outbound HTTP happens in the worker, under the service's policy
    router = APIRouter(prefix="/v2")
    signer = common.UrlSigner(ctx.settings.server.data_dir / common.KEY_FILE)

    @router.post(
        "/remove-background",
        status_code=202,
        response_model=JobLinkResponse,
        responses=_ERRORS,
        openapi_extra=common.json_body(RemoveBackgroundRequest),
        summary="Remove the background (v2): cut-out or mask",
    )
    async def remove_background(request: Request, client: Caller) -> Any:
        body: RemoveBackgroundRequest = await common.read_body(
            request, ctx, RemoveBackgroundRequest
        )
        options = to_options(ctx, body)
        found = await common.source(request, ctx, client, body.image.source.url)
        job = await common.submit(ctx, Submission(options, owner=client.owner, **found))
        public = common.public_id(job.id)
        link = JobLinkResponse(
            jobId=public, statusUrl=common.absolute(request, f"/v2/status/{public}")
        )
        return JSONResponse(link.model_dump(), status_code=202)

    @router.get(
        "/status/{job_id}",
        response_model=StatusResponse,
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="A v2 job's status: result URLs, or errorDetails",
    )
    def status(request: Request, job_id: common.JobId, client: Caller) -> Any:
        job = ctx.service.get(common.our_id(job_id), client.owner)
        body = status_body(request, job, signer)
        return JSONResponse(body.model_dump(exclude_none=True))

    common.add_output_route(router, ctx, signer, _ERRORS)
    return Vendor("adobe_v2", router, PREFIXES, render_error, "Adobe Photoshop API v2")


def status_body(request: Request, job: Job, signer: common.UrlSigner) -> StatusResponse:
    body: dict[str, Any] = {
        "jobId": common.public_id(job.id),
        "status": common.STATES[job.status],
        "createdTime": common.timestamp(job.created_at),
        "modifiedTime": common.timestamp(job.updated_at),
    }
    if job.status is JobStatus.SUCCEEDED:
        media_type = job.results["cutout"].media_type if "cutout" in job.results else "image/png"
        url = signer.url(request, "/v2", job)
        body["result"] = {"outputs": [{"destination": {"url": url}, "mediaType": media_type}]}
    elif job.status in (JobStatus.FAILED, JobStatus.CANCELED):
        code, message = common.failure(job)
        body.update(error_code=code, message=message)
        body["errorDetails"] = [{"errorCode": code, "message": message}]
    return StatusResponse.model_validate(body)
