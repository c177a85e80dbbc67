"""The image-store API (``/v1/images``): upload images, transform them, publish them.

Every transformation creates a new image (the old one stays). ``remove-background`` runs as
a job through ``JobService.run_sync`` and stores the job's PNG cut-out as the new image;
``convert`` re-encodes (no model). ``publish`` gives an image a public ``url``, served without
a key. Records and bytes live in the app's blob store (``image_store_records``), scoped by key.

Each POST answers with ``X-Usage-Operations``: the image-processing operations it counted
(remove-background 2, convert 1, upload and publish 0), as the seed counts them.

Errors on ``/v1/images`` use the envelope ``{"error": {"status", "code", "message",
"hint"?, "param"?}}`` (the seed shows none; this is ours in the seed's snake_case style,
with the HTTP status repeated in the body).
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cleancut import net
from cleancut.api.auth import Caller
from cleancut.api.compat import Vendor
from cleancut.api.compat.image_store_records import (
    Format,
    ImageNotFound,
    ImageRecord,
    ImageRepo,
    convert,
    describe,
)
from cleancut.api.context import ApiContext, error_for_code, missing, validate_body
from cleancut.api.downloads import blob_response
from cleancut.api.errors import BodyInvalid, ErrorInfo
from cleancut.api.intake import JSON, MULTIPART
from cleancut.api.options import RemovalOptions
from cleancut.api.uploads import check_image, media_type, read_body, read_json, read_multipart
from cleancut.errors import InvalidInput, JobTimedOut, UnsupportedFormat
from cleancut.jobs.model import CUTOUT, Job, JobStatus
from cleancut.jobs.service import JobService, Submission

PREFIX = "/v1/images"
USAGE_HEADER = "X-Usage-Operations"
#: Image-processing operations each endpoint counts (the seed: remove-background is two).
OPERATIONS = {"upload": 0, "remove-background": 2, "convert": 1, "publish": 0}
MAX_NAME = 255
TOO_LONG = f"String should have at most {MAX_NAME} characters"
ImageId = Annotated[str, Path(max_length=80, description="the image's id (image_...)")]


def render_error(info: ErrorInfo) -> Response:
    error: dict[str, Any] = {"status": info.status, "code": info.code, "message": info.message}
    if info.hint:
        error["hint"] = info.hint
    if info.field:
        error["param"] = info.field
    return JSONResponse({"error": error}, status_code=info.status, headers=dict(info.headers))


# -- bodies -------------------------------------------------------------------------------------


class Image(BaseModel):
    """An image in the store. Each transformation creates a new one with a new id."""

    id: str = Field(description="image_{string}", examples=["image_3f9c0a1b2c3d4e5f6a7b8c9d"])
    name: str
    url: str | None = Field(description="the public URL once published, else null")
    width: int
    height: int
    format: Literal["jpeg", "png", "webp"]
    size: int = Field(description="bytes")
    created_at: str = Field(description="ISO 8601")


class ImageFromUrl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="http(s) URL of the image to store")
    name: str | None = Field(default=None, max_length=255)


class RemoveBackgroundBody(BaseModel):
    name: str | None = Field(default=None, max_length=255, description="default: the old name")


class ConvertBody(BaseModel):
    format: Literal["png", "webp", "jpeg", "jpg"]
    name: str | None = Field(default=None, max_length=255, description="default: the old name")
    quality: int = Field(default=90, ge=1, le=100, description="jpeg and webp")


class Deleted(BaseModel):
    id: str
    deleted: bool


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    hint: str | None = None
    param: str | None = None


class ImageStoreError(BaseModel):
    error: ErrorBody


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ImageStoreError, "description": "error"} for s in statuses}


_USAGE = {USAGE_HEADER: {"schema": {"type": "integer"}, "description": "operations counted"}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string", "maxLength": 255},
                    },
                }
            },
            JSON: {"schema": ImageFromUrl.model_json_schema()},
        },
    }
}


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": False, "content": {JSON: schema}}}


# -- the router ---------------------------------------------------------------------------------


def vendor(ctx: ApiContext, policy: net.NetPolicy) -> Vendor:
    return Vendor(
        name="image_store",
        router=build_router(ctx, policy),
        prefixes=(PREFIX,),
        render_error=render_error,
        tag="image store",
    )


def build_router(ctx: ApiContext, policy: net.NetPolicy) -> APIRouter:
    router = APIRouter(prefix=PREFIX, responses=_errors(401, 404, 422, 429, 500))
    service = ctx.service
    repo = ImageRepo(lambda: service.blobs)
    max_pixels = ctx.settings.max_pixels

    def store(owner: str | None, name: str, data: bytes) -> ImageRecord:
        kept, fmt, width, height = describe(data, max_pixels)
        return repo.create(owner, name, kept, fmt, width, height)

    @router.get(
        "/public/{filename}",
        response_class=Response,
        responses={200: {"description": "The published image", "content": {"image/*": _BINARY}}},
        summary="A published image (no key needed)",
    )
    def public_image(request: Request, filename: Annotated[str, Path(max_length=100)]) -> Response:
        stem = filename.partition(".")[0]
        record = repo.public(stem)
        if record.filename != filename:
            raise ImageNotFound(f"no public image {filename}")
        ref, data = repo.content(record)
        response = blob_response(request, ref, data, attachment=False)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @router.post(
        "",
        response_model=Image,
        responses={200: {"headers": _USAGE}, **_errors(400, 413, 415, 422)},
        openapi_extra=_UPLOAD_BODY,
        summary="Upload an image (multipart file, or JSON with a url)",
    )
    async def upload(request: Request, client: Caller) -> JSONResponse:
        data, name = await _read_upload(request, ctx.upload_limit, policy)
        record = await run_in_threadpool(store, client.owner, name, data)
        return _answer(request, record, "upload")

    @router.get("/{image_id}", response_model=Image, summary="An image's record")
    def get_image(request: Request, image_id: ImageId, client: Caller) -> Image:
        return _show(request, repo.get(client.owner, image_id))

    @router.get(
        "/{image_id}/content",
        response_class=Response,
        responses={
            200: {"description": "The image's bytes", "content": {"image/*": _BINARY}},
            304: {"description": "Not modified (If-None-Match)"},
        },
        summary="Download an image",
    )
    def image_content(request: Request, image_id: ImageId, client: Caller) -> Response:
        ref, data = repo.content(repo.get(client.owner, image_id))
        return blob_response(request, ref, data, attachment=False)

    @router.delete("/{image_id}", response_model=Deleted, summary="Delete an image")
    def delete_image(image_id: ImageId, client: Caller) -> Deleted:
        record = repo.delete(client.owner, image_id)
        return Deleted(id=record.id, deleted=True)

    @router.post(
        "/{image_id}/remove-background",
        response_model=Image,
        responses={200: {"headers": _USAGE}, **_errors(400, 413, 422, 503, 504)},
        openapi_extra=_json_body(RemoveBackgroundBody),
        summary="Remove the background: a new PNG image (counts as two operations)",
    )
    async def remove_background(
        request: Request, image_id: ImageId, client: Caller
    ) -> JSONResponse:
        body: RemoveBackgroundBody = validate_body(RemoveBackgroundBody, await _optional(request))
        record = await run_in_threadpool(repo.get, client.owner, image_id)
        _, data = await run_in_threadpool(repo.content, record)
        options = ctx.core_options(RemovalOptions(format="png"))
        sub = Submission(options=options, upload=data, owner=client.owner)
        job = await run_in_threadpool(service.run_sync, sub, ctx.settings.server.sync_timeout)
        cutout = await run_in_threadpool(_cutout, service, job)
        new = await run_in_threadpool(store, client.owner, body.name or record.name, cutout)
        return _answer(request, new, "remove-background")

    @router.post(
        "/{image_id}/convert",
        response_model=Image,
        responses={200: {"headers": _USAGE}, **_errors(400, 413, 422)},
        openapi_extra=_json_body(ConvertBody),
        summary="Convert to png, webp or jpeg: a new image",
    )
    async def convert_image(request: Request, image_id: ImageId, client: Caller) -> JSONResponse:
        body: ConvertBody = validate_body(ConvertBody, await _optional(request))
        record = await run_in_threadpool(repo.get, client.owner, image_id)
        _, data = await run_in_threadpool(repo.content, record)
        fmt: Format = "jpeg" if body.format == "jpg" else body.format
        out, width, height = await run_in_threadpool(convert, data, fmt, body.quality, max_pixels)
        new = await run_in_threadpool(
            repo.create, client.owner, body.name or record.name, out, fmt, width, height
        )
        return _answer(request, new, "convert")

    @router.post(
        "/{image_id}/publish",
        response_model=Image,
        responses={200: {"headers": _USAGE}},
        summary="Publish: the image gets a public url, served without a key",
    )
    def publish(request: Request, image_id: ImageId, client: Caller) -> JSONResponse:
        return _answer(request, repo.publish(client.owner, image_id), "publish")

    return router


def _show(request: Request, record: ImageRecord) -> Image:
    url = str(request.url_for("public_image", filename=record.filename))
    created = datetime.fromtimestamp(record.created_at, UTC)
    return Image(
        id=record.id,
        name=record.name,
        url=url if record.published else None,
        width=record.width,
        height=record.height,
        format=record.format,
        size=record.size,
        created_at=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )


def _answer(request: Request, record: ImageRecord, operation: str) -> JSONResponse:
    body = _show(request, record).model_dump(mode="json")
    return JSONResponse(body, headers={USAGE_HEADER: str(OPERATIONS[operation])})


async def _read_upload(request: Request, limit: int, policy: net.NetPolicy) -> tuple[bytes, str]:
    """The uploaded image and its name: a multipart ``file`` (+ ``name``) or JSON ``url``."""
    kind = media_type(request)
    if kind == MULTIPART:
        parts = await read_multipart(request, limit)
        file = parts.get("file") or parts.get("image")
        if file is None:
            raise missing("file", "a multipart field 'file' with the image is required")
        data = check_image(file.data, limit, "file")
        name_part = parts.get("name")
        name = name_part.text().strip() if name_part else ""
        if len(name) > MAX_NAME:
            raise BodyInvalid([{"loc": ("name",), "msg": TOO_LONG, "type": "string_too_long"}])
        return data, name or (file.filename or "image")[:MAX_NAME]
    if kind == JSON or kind.endswith("+json"):
        body: ImageFromUrl = validate_body(ImageFromUrl, await read_json(request, 64 * 1024))
        fetched = await run_in_threadpool(net.fetch, body.url, policy)
        data = check_image(fetched.content, limit, "the image at url")
        default = posixpath.basename(urlsplit(body.url).path)[:MAX_NAME] or "image"
        return data, body.name or default
    raise UnsupportedFormat(
        f"cannot take a {kind or 'body without a content type'}",
        hint="send multipart/form-data (file, name) or application/json (url, name)",
    )


def _cutout(service: JobService, job: Job) -> bytes:
    """The finished job's PNG cut-out; its failure as our typed error."""
    if not job.terminal:
        raise JobTimedOut(
            "the background was not removed within the synchronous time limit",
            hint=f"job {job.id} keeps running; retry later",
        )
    if job.status is not JobStatus.SUCCEEDED:
        raise error_for_code(job.error_code or job.status.value, job.error_message)
    return service.open_blob(job, CUTOUT)[1]


async def _optional(request: Request) -> Any:
    """A JSON object body that may also be absent (empty: every field takes its default)."""
    raw = await read_body(request, 64 * 1024)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
