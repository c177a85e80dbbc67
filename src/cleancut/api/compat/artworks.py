"""The artworks API (``/v2/artworks``): background removal as an artwork, from an image URL.

``POST /v2/artworks/remove-background`` submits a URL job (fetched by the worker with the SSRF
rules) and answers 202 with the artwork; ``GET /v2/artworks/{id}`` renders the job again, with
``results`` once it succeeded. A ``webhook`` must be HTTPS on a publicly routable host (checked
with the webhook policy before anything is queued; ``allow_private_networks`` opens private
targets for tests and intranets) and receives the final artwork as a signed POST: the job layer
delivers it, with the artwork shape registered as the job's payload renderer.

Webhooks are signed like ours (``X-Cleancut-Signature``, ``X-Cleancut-Timestamp``) with one
server-wide secret kept in ``<data_dir>/artworks-webhook-secret`` (made on first use, mode 0600;
write your own there to choose it); the same secret signs the result URLs.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cleancut import net
from cleancut.api.auth import Caller
from cleancut.api.compat import Vendor
from cleancut.api.compat.artworks_schemas import (
    META_KEY,
    Artwork,
    RemoveBackgroundRequest,
    artwork,
    error_responses,
    render_error,
    result_name,
)
from cleancut.api.compat.uuid_ids import job_id_of
from cleancut.api.context import ApiContext, validate_body
from cleancut.api.downloads import blob_response
from cleancut.api.options import RemovalOptions
from cleancut.api.uploads import read_json
from cleancut.errors import InvalidInput, JobNotFound, ResultNotFound
from cleancut.jobs.model import CUTOUT, Job
from cleancut.jobs.service import JobService, Submission
from cleancut.jobs.webhooks import PAYLOAD_KEY
from cleancut.net import NetPolicy, WebhookSpec
from cleancut.net_validate import Resolver

PREFIX = "/v2/artworks"
PAYLOAD = "artworks"
SECRET_FILE = "artworks-webhook-secret"
#: ``auto`` and ``webp``: "webp with high-quality settings" (lossy with alpha, quality 90).
_FORMATS: dict[str, dict[str, Any]] = {
    "auto": {"format": "webp", "lossless": False, "quality": 90},
    "webp": {"format": "webp", "lossless": False, "quality": 90},
    "png": {"format": "png"},
}
_REQUEST_SCHEMA = RemoveBackgroundRequest.model_json_schema()
ArtworkId = Annotated[str, PathParam(max_length=64, description="the artwork's id (a UUID)")]


def load_secret(data_dir: Path) -> bytes:
    """The server's artworks secret, created (0600) when absent or empty."""
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text.encode()
    fresh = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first (or it is empty): use or fill it
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing.encode()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(fresh + "\n")
    return fresh.encode()


def check_webhook(url: str, policy: NetPolicy, resolver: Resolver | None = None) -> None:
    """HTTPS and a publicly routable host (unless the policy allows private networks): the
    vendor's rule, with our webhook policy. Raises a 400 error otherwise."""
    try:
        net.validate_url(url, policy.for_webhooks(), resolver=resolver)
    except (net.InvalidURL, net.URLForbidden) as exc:
        raise type(exc)(f"webhook: {exc.message}", hint=exc.hint) from None
    except net.URLFetchFailed as exc:  # the name does not resolve
        raise InvalidInput(f"webhook: {exc.message}") from None


def vendor(ctx: ApiContext, policy: NetPolicy) -> Vendor:
    secret = load_secret(ctx.settings.server.data_dir)
    service = ctx.service

    def render_payload(job: Job) -> dict[str, Any]:
        params = job.meta.get(META_KEY)
        base = params.get("base", "/") if isinstance(params, dict) else "/"
        return artwork(job, str(base), secret)

    service.register_webhook_payload(PAYLOAD, render_payload)
    router = APIRouter(prefix=PREFIX, responses=error_responses(400, 401, 403, 429, 500))

    @router.post(
        "/remove-background",
        status_code=202,
        response_model=Artwork,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _REQUEST_SCHEMA}},
            }
        },
        summary="Remove the background from an image URL: a new artwork (202)",
    )
    async def remove_background(request: Request, client: Caller) -> JSONResponse:
        raw = await read_json(request, ctx.json_limit)
        body: RemoveBackgroundRequest = validate_body(RemoveBackgroundRequest, raw)
        hook = None
        if body.webhook is not None:
            await run_in_threadpool(check_webhook, body.webhook, policy)
            hook = WebhookSpec(url=body.webhook, secret=secret)
        base = str(request.base_url)
        params = {"imageUrl": body.imageUrl, "outputFormat": body.outputFormat, "base": base}
        if body.webhook is not None:
            params["webhook"] = body.webhook
        meta: dict[str, Any] = {META_KEY: params}
        if hook is not None:
            meta[PAYLOAD_KEY] = PAYLOAD
        options = ctx.core_options(RemovalOptions(**_FORMATS[body.outputFormat]))
        sub = Submission(
            options=options, url=body.imageUrl, owner=client.owner, webhook=hook, meta=meta
        )
        job = await run_in_threadpool(service.submit, sub)
        return JSONResponse(artwork(job, base, secret), status_code=202)

    @router.get(
        "/{artwork_id}",
        response_model=Artwork,
        responses=error_responses(404),
        summary="An artwork: its status, and the result URLs once it succeeded",
    )
    def get_artwork(request: Request, artwork_id: ArtworkId, client: Caller) -> JSONResponse:
        job = _artwork_job(service, artwork_id, client.owner)
        return JSONResponse(artwork(job, str(request.base_url), secret))

    @router.get(
        "/{artwork_id}/results/{name}",
        response_class=Response,
        responses={
            200: {"description": "The result image", "content": {"image/*": {}}},
            **error_responses(404),
        },
        summary="A result image (the signed URL from results; no API key needed)",
    )
    def get_result(
        request: Request,
        artwork_id: ArtworkId,
        name: Annotated[str, PathParam(max_length=80)],
    ) -> Response:
        try:
            job = _artwork_job(service, artwork_id)
        except JobNotFound:
            job = None
        expected = result_name(job, secret) if job is not None else None
        if job is None or expected is None or not secrets.compare_digest(name, expected):
            raise ResultNotFound("no such result")
        ref, data = service.open_blob(job, CUTOUT)
        return blob_response(request, ref, data, attachment=False)

    return Vendor(
        name="artworks",
        router=router,
        prefixes=(PREFIX,),
        render_error=render_error,
        tag="compat: artworks",
    )


def _artwork_job(service: JobService, artwork_id: str, owner: str | None = None) -> Job:
    """The job an artwork id names; other jobs (native, other vendors') are not artworks."""
    job_id = job_id_of(artwork_id)
    job = service.get(job_id, owner) if job_id is not None else None
    if job is None or META_KEY not in job.meta:
        raise JobNotFound(f"no artwork {artwork_id}")
    return job
