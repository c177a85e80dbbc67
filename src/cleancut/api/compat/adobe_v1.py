"""Adobe Photoshop API v1 (Sensei): ``POST /sensei/cutout``, ``POST /sensei/mask`` and
``GET /sensei/status/{jobId}``, answering in Adobe's shapes and error envelope.

``input.storage`` ``external`` (also ``azure``, ``dropbox``: all pre-signed http(s) URLs) is
fetched by the worker through the SSRF-safe fetcher; ``output.href`` with such a storage is a
pre-signed URL the worker PUTs the PNG to once it is stored (a refused PUT fails the job with
``output_upload_failed``). ``storage: "internal"`` keeps the result here instead: the status
then shows a signed download URL as ``output.href``. An ``input.href`` naming one of our own
job blobs is read from our storage (see ``adobe_common``).

Output: a PNG. ``/sensei/cutout`` gives the RGBA cut-out (``color.space: "rgb"``: flattened on
white, no alpha); ``/sensei/mask`` gives the grayscale mask, ``soft`` or ``binary``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cleancut.api.auth import Caller
from cleancut.api.compat import Vendor
from cleancut.api.compat import adobe_common as common
from cleancut.api.context import ApiContext, error_for_code
from cleancut.api.errors import ErrorInfo
from cleancut.api.options import BackgroundOptions, RemovalOptions
from cleancut.jobs.model import Destination, Job, JobStatus
from cleancut.jobs.service import Submission
from cleancut.net import NetPolicy

PREFIX = "/sensei"
META_KEY = "adobe_v1"
INTERNAL = "internal"
Storage = Literal["external", "azure", "dropbox", "internal"]
State = Literal["pending", "running", "succeeded", "failed"]

#: Adobe's error ``type`` for each HTTP status.
_TYPES: dict[int, str] = {
    400: "InputValidationError",
    401: "Unauthorized",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "UnableToUploadAsset",
    410: "AssetLinkInvalid",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
#: Job failure codes shown with the status Adobe documents for them (others keep ours).
_JOB_STATUS: dict[str, int] = {
    "url_fetch_failed": 410,
    "url_too_many_redirects": 410,
    "output_upload_failed": 409,
}

#: The request field a job failure is about, where there is one.
_FIELDS: dict[str, str] = {
    "output_upload_failed": "output.href",
    "unsupported_format": "input.href",
    "corrupt_image": "input.href",
    "image_too_large": "input.href",
}

_LENIENT = ConfigDict(extra="ignore")


class SenseiInput(BaseModel):
    model_config = _LENIENT
    href: str = Field(min_length=1, max_length=8192, description="pre-signed GET URL")
    storage: Storage = "external"


class MaskFormat(BaseModel):
    model_config = _LENIENT
    format: Literal["soft", "binary"] = "soft"


class SenseiColor(BaseModel):
    model_config = _LENIENT
    space: Literal["rgb", "rgba"] = "rgba"


class SenseiOutput(BaseModel):
    model_config = _LENIENT
    href: str | None = Field(
        default=None, max_length=8192, description="pre-signed PUT URL (not with internal)"
    )
    storage: Storage = "external"
    mask: MaskFormat = Field(default_factory=MaskFormat)
    color: SenseiColor | None = None
    overwrite: bool = True

    @model_validator(mode="after")
    def _href(self) -> SenseiOutput:
        if self.storage != INTERNAL and not self.href:
            raise ValueError(f"output.href is required with storage {self.storage!r}")
        return self


class SenseiRequest(BaseModel):
    """The input image and where the PNG goes."""

    model_config = _LENIENT
    input: SenseiInput
    output: SenseiOutput


class SelfHref(BaseModel):
    href: str


class StatusLinks(BaseModel):
    self: SelfHref


class SenseiAccepted(BaseModel):
    links: StatusLinks = Field(alias="_links")


class SenseiErrorDetail(BaseModel):
    name: str | None = None
    reason: str


class SenseiError(BaseModel):
    """Adobe's error (``JobError``): also the items of a failed job's ``errors``."""

    type: str
    code: str = Field(description="the HTTP status, as text")
    title: str
    error_code: str = Field(description="cleancut's stable error code")
    details: list[SenseiErrorDetail]


class SenseiStatus(BaseModel):
    jobID: str
    status: State
    created: str
    modified: str
    input: str
    output: dict[str, Any]
    links: StatusLinks = Field(alias="_links")
    errors: list[SenseiError] | None = None


def error_body(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    detail = {"name": field, "reason": message} if field else {"reason": message}
    return {
        "type": _TYPES.get(status, "Error"),
        "code": str(status),
        "title": message,
        "error_code": code,
        "details": [detail],
    }


def render_error(info: ErrorInfo) -> Response:
    status = 400 if info.status == 422 else info.status
    body = error_body(status, info.code, info.message, info.field)
    return JSONResponse(body, status_code=status, headers=dict(info.headers))


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": SenseiError, "description": _TYPES[s]}
    for s in (400, 401, 403, 404, 413, 415, 429, 500, 503)
}


def _options(ctx: ApiContext, body: SenseiRequest, mode: Literal["cutout", "mask"]) -> Any:
    public = RemovalOptions(format="png", mode=mode, mask=body.output.mask.format)
    if mode == "cutout" and body.output.color is not None and body.output.color.space == "rgb":
        public = public.model_copy(
            update={"background": BackgroundOptions(type="color", color="#ffffff")}
        )
    return ctx.core_options(public)


def vendor(ctx: ApiContext, policy: NetPolicy) -> Vendor:
    del policy  # outbound HTTP happens in the worker, under the service's policy
    router = APIRouter(prefix=PREFIX)
    signer = common.UrlSigner(ctx.settings.server.data_dir / common.KEY_FILE)

    async def create(request: Request, client: Caller, mode: Literal["cutout", "mask"]) -> Any:
        body: SenseiRequest = await common.read_body(request, ctx, SenseiRequest)
        options = _options(ctx, body, mode)
        output = body.output.model_dump(exclude_unset=True, exclude_none=True)
        destinations: tuple[Destination, ...] = ()
        if body.output.storage != INTERNAL:
            assert body.output.href is not None
            destinations = (Destination(body.output.href.strip()),)
        meta = {META_KEY: {"op": mode, "input": body.input.href, "output": output}}
        found = await common.source(request, ctx, client, body.input.href)
        sub = Submission(options, owner=client.owner, destinations=destinations, meta=meta, **found)
        job = await common.submit(ctx, sub)
        href = common.absolute(request, f"{PREFIX}/status/{common.public_id(job.id)}")
        accepted = SenseiAccepted.model_validate({"_links": {"self": {"href": href}}})
        return JSONResponse(accepted.model_dump(by_alias=True), status_code=202)

    @router.post(
        "/cutout",
        status_code=202,
        response_model=SenseiAccepted,
        responses=_ERRORS,
        openapi_extra=common.json_body(SenseiRequest),
        summary="Remove the background (v1): an RGBA PNG",
    )
    async def sensei_cutout(request: Request, client: Caller) -> Any:
        return await create(request, client, "cutout")

    @router.post(
        "/mask",
        status_code=202,
        response_model=SenseiAccepted,
        responses=_ERRORS,
        openapi_extra=common.json_body(SenseiRequest),
        summary="Create a mask (v1): a grayscale PNG, soft or binary",
    )
    async def sensei_mask(request: Request, client: Caller) -> Any:
        return await create(request, client, "mask")

    @router.get(
        "/status/{job_id}",
        response_model=SenseiStatus,
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="A v1 job's status (pending, running, succeeded, failed)",
    )
    def status(request: Request, job_id: common.JobId, client: Caller) -> Any:
        job = ctx.service.get(common.our_id(job_id), client.owner)
        body = status_body(request, job, signer)
        return JSONResponse(body.model_dump(by_alias=True, exclude_none=True))

    common.add_output_route(router, ctx, signer, _ERRORS)
    return Vendor("adobe_v1", router, (PREFIX,), render_error, "Adobe Photoshop API v1")


def status_body(request: Request, job: Job, signer: common.UrlSigner) -> SenseiStatus:
    echo: dict[str, Any] = dict(job.meta.get(META_KEY) or {})
    output: dict[str, Any] = dict(echo.get("output") or {"storage": INTERNAL})
    if output.get("storage") == INTERNAL and job.status is JobStatus.SUCCEEDED:
        output["href"] = signer.url(request, PREFIX, job)
    source = echo.get("input") or job.source_url or ""
    href = common.absolute(request, f"{PREFIX}/status/{common.public_id(job.id)}")
    errors = None
    if job.status in (JobStatus.FAILED, JobStatus.CANCELED):
        code, message = common.failure(job)
        http = _JOB_STATUS.get(code) or error_for_code(code, message).http_status
        field = _FIELDS.get(code, "input.href" if code.startswith("url_") else None)
        errors = [SenseiError(**error_body(400 if http == 422 else http, code, message, field))]
    return SenseiStatus.model_validate(
        {
            "jobID": common.public_id(job.id),
            "status": common.STATES[job.status],
            "created": common.timestamp(job.created_at),
            "modified": common.timestamp(job.updated_at),
            "input": source,
            "output": output,
            "_links": {"self": {"href": href}},
            "errors": errors,
        }
    )
