"""The artworks API's bodies (what OpenAPI shows), its error envelope, and Job → artwork JSON.

An artwork is one of our jobs seen through the vendor's shape: the id is the job id written
as a UUID (both are 128 random bits), ``status`` renames our states (``queued`` → ``starting``),
``parameters`` echoes the request (kept in the job's metadata), and ``results`` lists absolute,
signed URLs of the result image, which can be fetched without an API key like the vendor's CDN
links (they stop working when the job expires).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from cleancut.api.compat.uuid_ids import as_uuid
from cleancut.api.errors import ErrorInfo
from cleancut.jobs.model import CUTOUT, Job, JobStatus

OutputFormat = Literal["auto", "png", "webp"]
ArtworkStatus = Literal["starting", "processing", "succeeded", "failed", "canceled"]
STATUS: dict[JobStatus, ArtworkStatus] = {
    JobStatus.QUEUED: "starting",
    JobStatus.PROCESSING: "processing",
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}
#: The job ``meta`` key holding the request's parameters and the base URL it came in on.
META_KEY = "artworks"
#: Validation and content-type failures are plain 400s here, as in the vendor's API.
_STATUS_MAP = {422: 400, 415: 400}
_EXTENSIONS = {"image/png": "png", "image/webp": "webp"}


class RemoveBackgroundRequest(BaseModel):
    """``POST /v2/artworks/remove-background``. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    imageUrl: str = Field(min_length=1, max_length=2048, description="the image to cut out")
    webhook: str | None = Field(
        default=None,
        max_length=2048,
        description="HTTPS URL on a publicly routable host: receives the final artwork (POST, "
        "signed) on completion; loopback, link-local, private and metadata addresses are "
        "rejected",
    )
    outputFormat: OutputFormat = Field(
        default="auto",
        description="auto (high-quality WebP, the default), png (lossless) or webp (= auto)",
    )


class ArtworkParameters(BaseModel):
    imageUrl: str
    webhook: str | None = None
    outputFormat: OutputFormat = "auto"


class Artwork(BaseModel):
    id: str = Field(description="UUID")
    artworkType: Literal["remove_background"]
    parameters: ArtworkParameters
    duration: float = Field(description="processing seconds (0 until finished)")
    results: list[str] = Field(description="absolute URLs of the result images")
    status: ArtworkStatus
    createdAt: str = Field(description="ISO 8601, UTC, milliseconds")


class ArtworkError(BaseModel):
    message: str
    statusCode: int
    error: str


def result_token(secret: bytes, job_id: str) -> str:
    return hmac.new(secret, f"artwork-result:{job_id}".encode(), hashlib.sha256).hexdigest()[:32]


def result_name(job: Job, secret: bytes) -> str | None:
    ref = job.results.get(CUTOUT)
    if job.status is not JobStatus.SUCCEEDED or ref is None:
        return None
    return f"{result_token(secret, job.id)}.{_EXTENSIONS.get(ref.media_type, 'bin')}"


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def artwork(job: Job, base_url: str, secret: bytes) -> dict[str, Any]:
    """The vendor's artwork object for ``job``; ``base_url`` ends with ``/``."""
    stored = job.meta.get(META_KEY)
    params: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
    parameters: dict[str, Any] = {
        "imageUrl": params.get("imageUrl", job.source_url or ""),
        "outputFormat": params.get("outputFormat", "auto"),
    }
    if params.get("webhook"):
        parameters["webhook"] = params["webhook"]
    duration = 0.0
    if job.started_at is not None and job.finished_at is not None:
        duration = round(max(0.0, job.finished_at - job.started_at), 3)
    aid = as_uuid(job.id)
    name = result_name(job, secret)
    results = [f"{base_url}v2/artworks/{aid}/results/{name}"] if name else []
    return {
        "id": aid,
        "artworkType": "remove_background",
        "parameters": parameters,
        "duration": duration,
        "results": results,
        "status": STATUS[job.status],
        "createdAt": _iso(job.created_at),
    }


def render_error(info: ErrorInfo) -> Response:
    """``{message, statusCode, error}``: ``error`` is the status's reason phrase."""
    status = _STATUS_MAP.get(info.status, info.status)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body = {"message": info.message, "statusCode": status, "error": reason}
    return JSONResponse(body, status_code=status, headers=dict(info.headers))


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"model": ArtworkError, "description": HTTPStatus(status).phrase}
    return out
