"""remove.bg's API (``/v1.0``): ``POST /v1.0/removebg`` and ``GET /v1.0/account``.

A synchronous call, as remove.bg's: the request (multipart, urlencoded or JSON, same field
names) becomes our options plus one input, runs as a job through ``JobService.run_sync``,
and the job's result comes back as the image itself or, with ``Accept: application/json``, as
``{"data": {"result_b64", "foreground_top", ...}}``, with remove.bg's ``X-*`` headers. Errors
use remove.bg's envelope ``{"errors": [{"title", "code", "detail"}]}`` and its statuses: every
refusal of the input is a 400, a missing or wrong key a 403, too many requests a 429.

What this server does differently is in the README ("Drop-in vendor APIs"): nothing is
charged (``X-Credits-Charged: 0``), ``type`` is not detected (``X-Type`` echoes the requested
type, or ``other``), and ``roi``/``size`` are input transforms (see ``removebg_image``).
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cleancut import net
from cleancut.api.auth import Caller, Decision
from cleancut.api.compat import Vendor
from cleancut.api.compat.removebg_form import read_form
from cleancut.api.compat.removebg_image import foreground, prepare_input, zip_parts
from cleancut.api.compat.removebg_params import Params, RemoveBgError, parse
from cleancut.api.compat.removebg_schemas import (
    Account,
    RemoveBgErrors,
    RemoveBgJson,
    RemoveBgRequest,
)
from cleancut.api.context import ApiContext, error_for_code
from cleancut.api.errors import ErrorInfo
from cleancut.api.options import RemovalOptions
from cleancut.api.uploads import check_image
from cleancut.core.types import Options
from cleancut.errors import JobTimedOut
from cleancut.jobs.model import CUTOUT, MASK, Job, JobStatus
from cleancut.jobs.service import JobService, Submission

PREFIX = "/v1.0"
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "zip": "application/zip"}
#: Our error codes -> remove.bg's (remove.bg's own codes pass through unchanged).
CODES = {
    "upload_too_large": "file_too_large",
    "url_too_large": "file_too_large",
    "unsupported_format": "invalid_file_type",
    "corrupt_image": "invalid_file_type",
    "image_too_large": "resolution_too_high",
    "unauthorized": "auth_failed",
    "forbidden": "auth_failed",
    "rate_limited": "rate_limit_exceeded",
    "validation_error": "invalid_parameters",
    "invalid_input": "invalid_parameters",
    "invalid_options": "invalid_parameters",
    "bad_request": "invalid_parameters",
    "model_not_found": "invalid_parameters",
    "internal_error": "unknown_error",
}
TITLES = {
    "missing_source": "No image given",
    "multiple_sources": "Multiple image sources given",
    "multiple_bg_sources": "Multiple background sources given",
    "invalid_file_type": "Invalid file type",
    "file_too_large": "File too large",
    "resolution_too_high": "Input image has a too high resolution",
    "invalid_bg_color": "Invalid background color",
    "unknown_foreground": "Could not identify foreground in image",
    "failed_to_download": "Failed to download the image",
    "auth_failed": "Authentication failed",
    "rate_limit_exceeded": "Rate limit exceeded",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "queue_full": "Service busy",
    "job_timeout": "Processing timed out",
    "unknown_error": "Unknown error",
}
#: Statuses remove.bg answers with for these; any other client error is a 400.
KEPT_STATUSES = frozenset({403, 404, 405, 429})


def render_error(info: ErrorInfo) -> Response:
    code = CODES.get(info.code, info.code)
    status = info.status
    if status == 401:
        status = 403
    elif 400 <= status < 500 and status not in KEPT_STATUSES:
        status = 400
    title = TITLES.get(code) or code.replace("_", " ").capitalize()
    detail = f"{info.message} ({info.hint})" if info.hint else info.message
    body = {"errors": [{"title": title, "code": code, "detail": detail}]}
    return JSONResponse(body, status_code=status, headers=dict(info.headers))


# -- OpenAPI descriptions -----------------------------------------------------------------------


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": RemoveBgErrors, "description": "remove.bg error"} for s in statuses}


_FORM_SCHEMA = RemoveBgRequest.model_json_schema()
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _FORM_SCHEMA},
            "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
            "application/json": {"schema": _FORM_SCHEMA},
        },
    }
}
_IMAGE_HEADERS = {
    name: {"schema": {"type": "string"}}
    for name in (
        "X-Type",
        "X-Width",
        "X-Height",
        "X-Foreground-Top",
        "X-Foreground-Left",
        "X-Foreground-Width",
        "X-Foreground-Height",
        "X-Credits-Charged",
    )
}


# -- the router ---------------------------------------------------------------------------------


def vendor(ctx: ApiContext, policy: net.NetPolicy) -> Vendor:
    return Vendor(
        name="removebg",
        router=build_router(ctx, policy),
        prefixes=(PREFIX,),
        render_error=render_error,
        tag="remove.bg",
    )


def build_router(ctx: ApiContext, policy: net.NetPolicy) -> APIRouter:
    router = APIRouter(prefix=PREFIX, responses=_errors(403, 429, 500))
    service = ctx.service

    @router.post(
        "/removebg",
        response_class=Response,
        responses={
            200: {
                "description": "The result image (or ZIP); JSON with Accept: application/json",
                "headers": _IMAGE_HEADERS,
                "content": {
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                    "application/zip": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": RemoveBgJson.model_json_schema()},
                },
            },
            **_errors(400, 503, 504),
        },
        openapi_extra=_BODY,
        summary="remove.bg: remove the background of an image (synchronous)",
    )
    async def removebg(request: Request, client: Caller) -> Response:
        form = await read_form(request, ctx.upload_limit, ctx.json_limit)
        params = parse(form)
        image, background = await _inputs(params, ctx.upload_limit, policy)
        options = ctx.core_options(_public(params, background), background_image=background)
        upload = await run_in_threadpool(prepare_input, image, params, ctx.settings.max_pixels)
        sub = Submission(options=options, upload=upload, owner=client.owner)
        job = await run_in_threadpool(service.run_sync, sub, ctx.settings.server.sync_timeout)
        wants_json = "application/json" in request.headers.get("accept", "").lower()
        return await run_in_threadpool(_respond, service, job, params, options, wants_json)

    @router.get(
        "/account",
        response_model=Account,
        summary="remove.bg: account balance (self-hosted: nothing is charged)",
    )
    def account(request: Request, client: Caller) -> Account:
        state = request.scope.get("state", {})
        decision = next((v for v in state.values() if isinstance(v, Decision)), None)
        free_calls = decision.remaining if decision is not None else UNLIMITED_CALLS
        return Account.model_validate(
            {
                "data": {
                    "attributes": {
                        "credits": {"total": 0, "subscription": 0, "payg": 0, "enterprise": 0},
                        "api": {"free_calls": free_calls, "sizes": "all"},
                    }
                }
            }
        )

    return router


#: ``free_calls`` when the server has no rate limit.
UNLIMITED_CALLS = 1_000_000


def _download(url: str, policy: net.NetPolicy, field: str) -> bytes:
    """GET an image URL through the SSRF-safe fetcher, with remove.bg's error codes."""
    try:
        return net.fetch(url, policy).content
    except (net.InvalidURL, net.URLForbidden) as exc:
        raise RemoveBgError(f"invalid_{field}", f"{field}: {exc.message}") from None
    except net.URLTooLarge as exc:
        raise RemoveBgError("file_too_large", f"{field}: {exc.message}") from None
    except net.URLFetchFailed as exc:
        code = "failed_to_download" if field == "image_url" else "failed_to_download_bg_image"
        raise RemoveBgError(code, f"{field}: {exc.message}") from None


async def _inputs(params: Params, limit: int, policy: net.NetPolicy) -> tuple[bytes, bytes | None]:
    """The image and the background image (if any), downloaded where given as URLs."""
    image = params.image
    if image is None:
        assert params.image_url is not None
        image = await run_in_threadpool(_download, params.image_url, policy, "image_url")
    image = check_image(image, limit, "image_file")
    background = params.bg_image
    if background is None and params.bg_image_url is not None:
        background = await run_in_threadpool(_download, params.bg_image_url, policy, "bg_image_url")
    if background is not None:
        background = check_image(background, limit, "the background image")
    return image, background


def _public(params: Params, background: bytes | None) -> RemovalOptions:
    try:
        return params.options(background)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise RemoveBgError("invalid_parameters", str(first.get("msg"))) from None


def _respond(
    service: JobService, job: Job, params: Params, options: Options, wants_json: bool
) -> Response:
    """The finished job as remove.bg answers: the file, or JSON with ``result_b64``."""
    if not job.terminal:
        raise JobTimedOut(
            "the image was not done within the synchronous time limit",
            hint=f"raise CLEANCUT_SERVER__SYNC_TIMEOUT (job {job.id} keeps running)",
        )
    if job.status is not JobStatus.SUCCEEDED:
        raise error_for_code(job.error_code or job.status.value, job.error_message)
    _, mask = service.open_blob(job, MASK)
    (width, height), box = foreground(mask, options)
    if box is None:
        raise RemoveBgError("unknown_foreground", "Could not identify foreground in image.")
    _, data = service.open_blob(job, CUTOUT)
    fmt = params.output_format()
    if fmt == "zip":
        data = zip_parts(data)
    left, top, box_w, box_h = box
    headers = {
        "X-Type": params.type if params.type != "auto" else "other",
        "X-Width": str(width),
        "X-Height": str(height),
        "X-Foreground-Top": str(top),
        "X-Foreground-Left": str(left),
        "X-Foreground-Width": str(box_w),
        "X-Foreground-Height": str(box_h),
        "X-Credits-Charged": "0",
        "X-Cleancut-Job-Id": job.id,
    }
    if wants_json:
        body = {
            "data": {
                "result_b64": base64.b64encode(data).decode("ascii"),
                "foreground_top": top,
                "foreground_left": left,
                "foreground_width": box_w,
                "foreground_height": box_h,
            }
        }
        return JSONResponse(body, headers=headers)
    return Response(content=data, media_type=MEDIA[fmt], headers=headers)
