"""What the Adobe Photoshop API routers (v1 ``/sensei``, v2 ``/v2/remove-background``) share:
job states in Adobe's words, timestamps, the inputs that name an object in our own storage,
signed download URLs for results kept here, and a small helper for self-contained OpenAPI
request bodies.

Inputs. An ``href``/``url`` that names a job blob of this server is read from our storage
instead of being fetched: ``/v1/jobs/{id}/result|mask|original`` (as a path, or a URL on this
server's own host) and the signed ``/sensei/outputs/{id}`` / ``/v2/outputs/{id}`` URLs these
routers hand out. The caller must own that job. Anything else is a URL the worker fetches
through ``cleancut.net`` (SSRF rules, size caps).

Signed URLs. Results that stay in our storage are handed out as
``{base}/{sensei|v2}/outputs/{id}?expires=<unix>&signature=<hmac>``: a GET needs no key (as with
Adobe's pre-signed URLs) and works until the job's retention ends. The HMAC key is 32 random
bytes created on first use in ``<data_dir>/adobe-url-signing.key`` (0600), so URLs survive
restarts and work across processes that share the data folder; deleting the file revokes them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from cleancut.api.auth import Client
from cleancut.api.compat.uuid_ids import as_uuid, job_id_of
from cleancut.api.context import ApiContext, validate_body
from cleancut.api.downloads import blob_response
from cleancut.api.uploads import read_json
from cleancut.errors import Forbidden
from cleancut.jobs.model import CUTOUT, MASK, ORIGINAL, Job, JobStatus
from cleancut.jobs.service import Submission

#: Adobe's job states (both APIs): ours → theirs. A canceled job is reported as failed.
STATES: dict[JobStatus, str] = {
    JobStatus.QUEUED: "pending",
    JobStatus.PROCESSING: "running",
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "failed",
}
JOB_ID = r"[A-Za-z0-9_-]{1,64}"
JobId = Annotated[str, PathParam(pattern=f"^{JOB_ID}$", description="the job's id")]
KEY_FILE = "adobe-url-signing.key"

_OWN_JOB_PATH = re.compile(rf"^/v1/jobs/(?P<id>{JOB_ID})/(?P<kind>result|mask|original)$")
_OWN_SIGNED_PATH = re.compile(rf"^/(?:sensei|v2)/outputs/(?P<id>{JOB_ID})$")
_BLOBS = {"result": CUTOUT, "mask": MASK, "original": ORIGINAL}


def public_id(job_id: str) -> str:
    """Adobe's job ids are UUIDs: ours (128 random bits as hex) written as one."""
    return as_uuid(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else job_id


def our_id(text: str) -> str:
    """Our id for a job id a client sends (the UUID spelling, or ours as it is)."""
    return job_id_of(text) or text


def timestamp(seconds: float) -> str:
    """``2020-02-11T21:08:43.789Z``: UTC with milliseconds, as Adobe writes them."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def absolute(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def failure(job: Job) -> tuple[str, str]:
    """(code, message) of a failed or canceled job."""
    if job.status is JobStatus.CANCELED:
        return "canceled", "the job was canceled before it finished"
    code = job.error_code or "internal_error"
    return code, job.error_message or code


# -- inputs -----------------------------------------------------------------------------------


def own_object(request: Request, href: str) -> tuple[str, str] | None:
    """``(job_id, blob)`` when ``href`` names a job blob of this server, else None."""
    parts = urlsplit(href.strip())
    path = parts.path
    if parts.scheme or parts.netloc:
        base = urlsplit(str(request.base_url))
        if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return None
        root = base.path.rstrip("/")
        if root and not path.startswith(root + "/"):
            return None
        path = path[len(root) :]
    if m := _OWN_JOB_PATH.match(path):
        return m.group("id"), _BLOBS[m.group("kind")]
    if m := _OWN_SIGNED_PATH.match(path):
        return our_id(m.group("id")), CUTOUT
    return None


async def source(request: Request, ctx: ApiContext, client: Client, href: str) -> dict[str, Any]:
    """The input part of a ``Submission``: ``upload=`` bytes of one of our blobs, or ``url=``."""
    found = own_object(request, href)
    if found is None:
        return {"url": href.strip()}
    job_id, blob = found
    job = await run_in_threadpool(ctx.service.get, job_id, client.owner)
    _, data = await run_in_threadpool(ctx.service.open_blob, job, blob)
    return {"upload": data}


async def read_body(request: Request, ctx: ApiContext, model: type[BaseModel]) -> Any:
    return validate_body(model, await read_json(request, ctx.json_limit))


async def submit(ctx: ApiContext, sub: Submission) -> Job:
    return await run_in_threadpool(ctx.service.submit, sub)


# -- signed download URLs ---------------------------------------------------------------------


class UrlSigner:
    """HMAC-SHA256 over ``job_id`` and an expiry, keyed by a secret kept in the data folder."""

    def __init__(self, key_path: Path, clock: Callable[[], float] = time.time) -> None:
        self.key_path = key_path
        self._clock = clock
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _secret(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = _load_or_create_key(self.key_path)
            return self._key

    def signature(self, job_id: str, expires: int) -> str:
        message = f"{job_id}:{expires}".encode()
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()[:40]

    def url(self, request: Request, prefix: str, job: Job) -> str:
        expires = int(job.expires_at)
        query = urlencode({"expires": expires, "signature": self.signature(job.id, expires)})
        return absolute(request, f"{prefix}/outputs/{public_id(job.id)}?{query}")

    def check(self, job_id: str, expires: int, signature: str) -> None:
        if expires < self._clock():
            raise Forbidden("this download URL has expired")
        expected = self.signature(job_id, expires).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise Forbidden("the download URL's signature is not valid")


def _load_or_create_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


_IMAGE = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}


def add_output_route(
    router: APIRouter,
    ctx: ApiContext,
    signer: UrlSigner,
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """``GET {prefix}/outputs/{job_id}?expires&signature``: a result kept in our storage."""

    @router.get(
        "/outputs/{job_id}",
        response_class=Response,
        responses={
            200: {"description": "The result image", **_IMAGE},
            304: {"description": "Not modified (If-None-Match)"},
            **errors,
        },
        summary="Download a result by its signed URL (no API key needed)",
    )
    def output(
        request: Request,
        job_id: JobId,
        expires: Annotated[int, Query(description="unix time the URL stops working")],
        signature: Annotated[str, Query(max_length=128)],
    ) -> Response:
        ours = our_id(job_id)
        signer.check(ours, expires, signature)
        job = ctx.service.get(ours)
        ref, data = ctx.service.open_blob(job, CUTOUT)
        return blob_response(request, ref, data, attachment=False)


# -- OpenAPI ----------------------------------------------------------------------------------


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a JSON body read by hand: the model's schema with its ``$defs``
    inlined, so it stands alone in the document."""
    schema = TypeAdapter(model).json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}
