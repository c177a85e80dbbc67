"""Response and request bodies of the native API (what OpenAPI shows), and Job → JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cleancut.api.options import RemovalOptions
from cleancut.jobs.model import CUTOUT, MASK, ORIGINAL, Job

Status = Literal["queued", "processing", "succeeded", "failed", "canceled"]
#: public download path segment -> blob name
DOWNLOADS: dict[str, str] = {"result": CUTOUT, "mask": MASK, "original": ORIGINAL}


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="https URL that receives the signed POST")
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="HMAC key; when omitted the server makes one and returns it once, here",
    )


class JobCreate(BaseModel):
    """Submit by URL (the server fetches it, with SSRF protection)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="http(s) URL of the image")
    options: RemovalOptions = Field(default_factory=RemovalOptions)
    webhook: WebhookIn | None = None


class EffectsRequest(BaseModel):
    """New effects over a finished job's stored original and matte (the model does not run)."""

    model_config = ConfigDict(extra="forbid")
    options: RemovalOptions = Field(default_factory=RemovalOptions)


class Links(BaseModel):
    job: str
    events: str
    effects: str
    result: str | None = None
    mask: str | None = None
    original: str | None = None


class ResultFile(BaseModel):
    url: str
    media_type: str
    size: int
    etag: str
    filename: str


class JobError(BaseModel):
    code: str
    message: str


class WebhookOut(BaseModel):
    url: str
    secret: str | None = Field(default=None, description="only in the answer that created it")


class DeliveryOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    ok: bool
    duration: float


class JobOut(BaseModel):
    id: str
    status: Status
    stage: str | None
    progress: float = Field(description="0..1 over all stages")
    percent: int = Field(description="progress in whole percent")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime
    attempts: int
    source_url: str | None
    parent_id: str | None
    error: JobError | None
    timings: dict[str, float] = Field(description="seconds per stage, and total")
    results: dict[str, ResultFile]
    links: Links
    webhook: WebhookOut | None
    deliveries: list[DeliveryOut]


class JobList(BaseModel):
    jobs: list[JobOut]


class Health(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] | None = Field(
        default=None,
        description="distributed backend only: each server (database, broker, store, events): "
        "ok or the error",
    )


class Ready(BaseModel):
    ready: bool
    model: str
    runtime: str | None = Field(description="runtime/device/precision once the model is loaded")
    precision: str
    queue_depth: int
    workers: int
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="distributed backend: each server (database, broker, store, events): ok or "
        "the error; any error makes the node unready",
    )


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def job_links(job: Job) -> Links:
    base = f"/v1/jobs/{job.id}"
    downloads = {path: f"{base}/{path}" for path, name in DOWNLOADS.items() if name in job.results}
    return Links(job=base, events=f"{base}/events", effects=f"{base}/effects", **downloads)


def job_out(job: Job, *, reveal_secret: bool = False) -> JobOut:
    base = f"/v1/jobs/{job.id}"
    paths = {name: path for path, name in DOWNLOADS.items()}
    results = {
        name: ResultFile(
            url=f"{base}/{paths.get(name, name)}",
            media_type=ref.media_type,
            size=ref.size,
            etag=ref.etag,
            filename=ref.filename,
        )
        for name, ref in job.downloads.items()
    }
    webhook = None
    if job.webhook is not None:
        secret = job.webhook.secret
        shown = secret.decode() if isinstance(secret, bytes) else secret
        webhook = WebhookOut(url=job.webhook.url, secret=shown if reveal_secret else None)
    error = (
        JobError(code=job.error_code, message=job.error_message or job.error_code)
        if job.error_code
        else None
    )
    return JobOut(
        id=job.id,
        status=job.status.value,
        stage=job.stage,
        progress=job.progress,
        percent=int(job.progress * 100),
        created_at=_at(job.created_at),
        updated_at=_at(job.updated_at),
        started_at=_ts(job.started_at),
        finished_at=_ts(job.finished_at),
        expires_at=_at(job.expires_at),
        attempts=job.attempts,
        source_url=job.source_url,
        parent_id=job.parent_id,
        error=error,
        timings=dict(job.timings),
        results=results,
        links=job_links(job),
        webhook=webhook,
        deliveries=[
            DeliveryOut(
                attempt=d.attempt,
                at=_at(d.at),
                status_code=d.status_code,
                error=d.error,
                ok=d.ok,
                duration=d.duration,
            )
            for d in job.deliveries
        ],
    )
