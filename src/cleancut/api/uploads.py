"""Request bodies, read as a stream under a byte cap.

A declared ``Content-Length`` beyond the cap is refused before a byte is read; otherwise the
body is counted as it arrives and refused (413 ``upload_too_large``) the moment it passes the
cap, so an endless or oversized upload never sits in memory whole. Multipart bodies are parsed
incrementally into at most a few parts. Images are recognised by their first bytes, never by the
file name or the declared type (415 ``unsupported_format`` otherwise).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from cleancut.core.io import INPUT_FORMATS, sniff_format
from cleancut.errors import InvalidInput, UnsupportedFormat, UploadTooLarge

MAX_PARTS = 8
#: Room for the multipart framing and the small form fields on top of the file itself.
FRAMING_SLACK = 256 * 1024


@dataclass
class Part:
    name: str
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"form field {self.name!r} is not UTF-8 text") from None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the upload is larger than {limit} bytes",
        hint="raise CLEANCUT_SERVER__MAX_UPLOAD_BYTES or send a smaller image",
    )


async def capped_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit)
        if chunk:
            yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    out = bytearray()
    async for chunk in capped_stream(request, limit):
        out += chunk
    return bytes(out)


async def read_json(request: Request, limit: int) -> Any:
    body = await read_body(request, limit)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


class _Collector:
    """python-multipart callbacks that collect every part into memory (the stream is capped)."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self._name = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
        }

    def on_part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise InvalidInput(f"at most {MAX_PARTS} form fields are accepted")
        self._headers.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._name).lower()] = bytes(self._value)
        self._name.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        _, opts = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in opts:
            raise InvalidInput("a form part has no name in its Content-Disposition")
        filename = opts.get(b"filename")
        self.parts.append(
            Part(
                name=opts[b"name"].decode("utf-8", "replace"),
                filename=filename.decode("utf-8", "replace") if filename is not None else None,
                content_type=self._headers.get(b"content-type", b"").decode("latin-1") or None,
            )
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].data += data[start:end]


async def read_multipart(request: Request, limit: int) -> dict[str, Part]:
    """The parts of a multipart/form-data body by field name (the first of each name wins)."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("multipart body without a boundary")
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in capped_stream(request, limit + FRAMING_SLACK):
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidInput(f"invalid multipart body: {exc}") from None
    out: dict[str, Part] = {}
    for part in collector.parts:
        out.setdefault(part.name, part)
    return out


def check_image(data: bytes | bytearray, limit: int, what: str = "the upload") -> bytes:
    """The upload as bytes when it is an image we decode; 413 / 415 / 400 otherwise."""
    if len(data) > limit:
        raise too_large(limit)
    if not data:
        raise InvalidInput(f"{what} is empty")
    blob = bytes(data)
    if sniff_format(blob) not in INPUT_FORMATS:
        raise UnsupportedFormat(
            f"{what} is not an image format cleancut reads",
            hint="supported: " + ", ".join(sorted(INPUT_FORMATS)),
        )
    return blob
