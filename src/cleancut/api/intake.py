"""Turn a submission request (multipart upload or JSON with a URL) into a jobs ``Submission``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from cleancut.api.auth import Client
from cleancut.api.context import ApiContext, missing, validate_body, validate_options
from cleancut.api.schemas import JobCreate, WebhookIn
from cleancut.api.uploads import check_image, media_type, read_json, read_multipart
from cleancut.errors import InvalidInput, UnsupportedFormat
from cleancut.jobs.service import Submission
from cleancut.net import NetPolicy, WebhookSpec, check_url

MULTIPART = "multipart/form-data"
JSON = "application/json"


@dataclass(frozen=True)
class Intake:
    submission: Submission
    secret_generated: bool


def _webhook(hook: WebhookIn | None, policy: NetPolicy) -> tuple[WebhookSpec | None, bool]:
    if hook is None:
        return None, False
    check_url(hook.url, policy.for_webhooks())  # scheme, spelling, literal addresses: no DNS here
    secret = hook.secret or secrets.token_urlsafe(32)
    return WebhookSpec(url=hook.url, secret=secret), hook.secret is None


def _json_field(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"form field {field!r} is not valid JSON: {exc}") from None


async def read_submission(
    request: Request,
    ctx: ApiContext,
    client: Client,
    policy: NetPolicy,
    idempotency_key: str | None = None,
) -> Intake:
    kind = media_type(request)
    if kind == MULTIPART:
        return await _from_multipart(request, ctx, client, policy, idempotency_key)
    if kind == JSON or kind.endswith("+json"):
        raw = await read_json(request, ctx.json_limit)
        body: JobCreate = validate_body(JobCreate, raw)
        webhook, generated = _webhook(body.webhook, policy)
        sub = Submission(
            options=ctx.core_options(body.options),
            url=body.url,
            owner=client.owner,
            idempotency_key=idempotency_key,
            webhook=webhook,
        )
        return Intake(sub, generated)
    raise UnsupportedFormat(
        f"cannot take a {kind or 'body without a content type'}",
        hint="send multipart/form-data (file, options) or application/json (url, options)",
    )


async def _from_multipart(
    request: Request,
    ctx: ApiContext,
    client: Client,
    policy: NetPolicy,
    idempotency_key: str | None,
) -> Intake:
    parts = await read_multipart(request, ctx.upload_limit)
    file = parts.get("file")
    if file is None:
        raise missing("file", "a multipart field 'file' with the image is required")
    upload = check_image(file.data, ctx.upload_limit)
    options_part = parts.get("options")
    public = validate_options(options_part.text() if options_part else None)
    bg_part = parts.get("background_image")
    background = (
        check_image(bg_part.data, ctx.upload_limit, "background_image") if bg_part else None
    )
    hook_part = parts.get("webhook")
    hook = (
        validate_body(WebhookIn, _json_field(hook_part.text(), "webhook"), "webhook")
        if hook_part
        else None
    )
    webhook, generated = _webhook(hook, policy)
    sub = Submission(
        options=ctx.core_options(public, background_image=background),
        upload=upload,
        owner=client.owner,
        idempotency_key=idempotency_key,
        webhook=webhook,
    )
    return Intake(sub, generated)


MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the image"},
        "options": {"$ref": "#/components/schemas/RemovalOptions"},
        "webhook": {"$ref": "#/components/schemas/WebhookIn"},
        "background_image": {"type": "string", "format": "binary"},
    },
}
MULTIPART_ENCODING = {
    "options": {"contentType": JSON},
    "webhook": {"contentType": JSON},
}


def request_body(json_schema: str | None, *, multipart: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a body these routes read by hand."""
    content: dict[str, Any] = {}
    if multipart:
        content[MULTIPART] = {"schema": MULTIPART_SCHEMA, "encoding": MULTIPART_ENCODING}
    if json_schema:
        content[JSON] = {"schema": {"$ref": f"#/components/schemas/{json_schema}"}}
    return {"requestBody": {"required": True, "content": content}}
