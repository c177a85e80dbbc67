"""Reading a remove.bg request body: a multipart form, an urlencoded form or a JSON object,
all three with the same field names, each under a byte cap."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File, create_form_parser

from cleancut.api.compat.removebg_params import RemoveBgError
from cleancut.api.uploads import FRAMING_SLACK, capped_stream, media_type, read_body, read_json

MAX_FIELDS = 32


async def read_form(request: Request, upload_limit: int, json_limit: int) -> dict[str, Any]:
    """The request's fields by name: text as ``str``, file parts as ``bytes``, JSON values as
    they are. The first of a repeated name wins."""
    kind = media_type(request)
    if kind == "application/json" or kind.endswith("+json"):
        body = await read_json(request, json_limit)
        if not isinstance(body, dict):
            raise RemoveBgError("invalid_body", "the JSON body must be an object")
        return body
    if kind == "multipart/form-data":
        return await _read_multipart(request, upload_limit + json_limit + FRAMING_SLACK)
    if kind == "application/x-www-form-urlencoded":
        body = await read_body(request, json_limit)
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RemoveBgError("invalid_body", f"cannot read the form: {exc}") from None
        if len(pairs) > MAX_FIELDS:
            raise RemoveBgError("invalid_body", f"at most {MAX_FIELDS} form fields are accepted")
        fields: dict[str, Any] = {}
        for name, value in pairs:
            fields.setdefault(name, value)
        return fields
    if not kind and request.headers.get("content-length", "0") in ("", "0"):
        return {}  # no body at all: every field is missing
    raise RemoveBgError(
        "invalid_content_type",
        f"cannot read a {kind or 'body without a content type'} body: send "
        "multipart/form-data, application/x-www-form-urlencoded or application/json",
    )


async def _read_multipart(request: Request, limit: int) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    count = 0

    def keep(name: bytes | None, value: Any) -> None:
        nonlocal count
        count += 1
        if count > MAX_FIELDS:
            raise RemoveBgError("invalid_body", f"at most {MAX_FIELDS} form fields are accepted")
        key = (name or b"").decode("utf-8", "replace")
        fields.setdefault(key, value)

    def on_field(field: Field) -> None:
        raw = field.value or b""
        try:
            keep(field.field_name, raw.decode("utf-8"))
        except UnicodeDecodeError:
            keep(field.field_name, raw)  # binary data in a part without a file name

    def on_file(file: File) -> None:
        file.file_object.seek(0)
        keep(file.field_name, file.file_object.read())
        file.close()

    headers = {"Content-Type": request.headers.get("content-type", "").encode("latin-1")}
    config = {"MAX_MEMORY_FILE_SIZE": limit, "UPLOAD_DELETE_TMP": True}
    try:
        parser = create_form_parser(headers, on_field, on_file, config)
        async for chunk in capped_stream(request, limit):
            parser.write(chunk)
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise RemoveBgError("invalid_body", f"cannot read the multipart body: {exc}") from None
    return fields
