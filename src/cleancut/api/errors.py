"""One JSON error envelope for every failure: ``{"error": {"code", "message", "hint"?, "field"?}}``.

Typed ``CleancutError``s carry their own code and HTTP status; request validation errors name the
offending field; unknown routes and methods keep their 404/405; anything unexpected becomes a 500
that says nothing about the server's insides (the traceback goes to the log only).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cleancut.errors import CleancutError

log = logging.getLogger("cleancut.api")

_REASONS = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "An API key is required."),
    403: ("forbidden", "This API key may not do that."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    406: ("not_acceptable", "No representation matches the Accept header."),
    413: ("upload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The request's content type is not accepted here."),
    422: ("validation_error", "The request did not validate."),
    429: ("rate_limited", "Too many requests."),
    500: ("internal_error", "Something went wrong on the server."),
    503: ("unavailable", "The service is not ready."),
}


class BodyInvalid(Exception):
    """A body (or one of its form fields) failed validation; rendered as a 422 naming the field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str | None = None
    field: str | None = None


class ErrorEnvelope(BaseModel):
    """Every non-2xx answer has this shape; ``code`` is stable, ``message`` is for humans."""

    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    hint: str | None = None,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


@dataclass(frozen=True)
class ErrorInfo:
    """One failure, before it is put into an envelope (ours, or a vendor's)."""

    status: int
    code: str
    message: str
    hint: str | None = None
    field: str | None = None
    headers: Mapping[str, str] = dc_field(default_factory=dict)


#: Renders an ErrorInfo in one envelope; vendor routers bring their own.
Renderer = Callable[[ErrorInfo], Response]


def native_envelope(info: ErrorInfo) -> Response:
    return error_response(
        info.status,
        info.code,
        info.message,
        hint=info.hint,
        field=info.field,
        headers=info.headers,
    )


def info_from_cleancut(exc: CleancutError) -> ErrorInfo:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        headers.update(retry_after_header(retry_after))
    status = exc.http_status if 400 <= exc.http_status <= 599 else 500
    if status >= 500 and status != 503:
        log.error("request failed: %s: %s", exc.code, exc.message)
    return ErrorInfo(status, exc.code, exc.message, exc.hint, None, headers)


def from_cleancut(exc: CleancutError) -> JSONResponse:
    response = native_envelope(info_from_cleancut(exc))
    assert isinstance(response, JSONResponse)
    return response


def _field(loc: Sequence[Any], prefix: Iterable[str] = ()) -> str:
    parts = [*prefix, *(str(p) for p in loc)]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts)


def validation_info(errors: Sequence[Mapping[str, Any]], prefix: Iterable[str] = ()) -> ErrorInfo:
    """422 naming the first offending field (``options.background.color``)."""
    prefix = tuple(prefix)
    if not errors:
        return ErrorInfo(422, "validation_error", "The request did not validate.")
    first = errors[0]
    field = _field(first.get("loc", ()), prefix)
    message = str(first.get("msg", "invalid value"))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    text = f"{field}: {message}{more}" if field else message + more
    return ErrorInfo(422, "validation_error", text, field=field or None)


def validation_response(
    errors: Sequence[Mapping[str, Any]], prefix: Iterable[str] = ()
) -> JSONResponse:
    response = native_envelope(validation_info(errors, prefix))
    assert isinstance(response, JSONResponse)
    return response


def from_pydantic(exc: ValidationError, prefix: Iterable[str] = ()) -> JSONResponse:
    return validation_response(exc.errors(include_url=False), prefix)


def _http_info(exc: StarletteHTTPException) -> ErrorInfo:
    code, default = _REASONS.get(exc.status_code, ("http_error", "The request failed."))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else default
    if detail in ("Not Found", "Method Not Allowed"):
        detail = default
    return ErrorInfo(exc.status_code, code, detail, headers=dict(exc.headers or {}))


def _info(request: Request, exc: Exception) -> ErrorInfo:
    match exc:
        case CleancutError():
            return info_from_cleancut(exc)
        case RequestValidationError():
            return validation_info(list(exc.errors()))
        case BodyInvalid():
            return validation_info(exc.errors)
        case StarletteHTTPException():
            return _http_info(exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    code, message = _REASONS[500]
    return ErrorInfo(500, code, message)


def render(request: Request, info: ErrorInfo) -> Response:
    """Put ``info`` into the envelope of whichever API owns the request's path."""
    envelopes: Sequence[tuple[str, Renderer]] = getattr(request.app.state, "envelopes", ())
    path = request.url.path
    for prefix, renderer in envelopes:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return renderer(info)
    return native_envelope(info)


async def _handler(request: Request, exc: Exception) -> Response:
    return render(request, _info(request, exc))


def install(app: FastAPI, envelopes: Sequence[tuple[str, Renderer]] = ()) -> None:
    """One handler for every failure; ``envelopes`` maps path prefixes (longest first wins)
    to vendor renderers, everything else gets ours."""
    app.state.envelopes = tuple(sorted(envelopes, key=lambda e: len(e[0]), reverse=True))
    for kind in (
        CleancutError,
        RequestValidationError,
        BodyInvalid,
        StarletteHTTPException,
        Exception,
    ):
        app.add_exception_handler(kind, _handler)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error answers a route can give."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        _, description = _REASONS.get(status, ("", "Error"))
        out[status] = {"model": ErrorEnvelope, "description": description}
    return out
