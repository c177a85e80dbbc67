"""Blob downloads: Content-Type, Content-Length, a strong ETag (``If-None-Match`` → 304) and a
Content-Disposition with a safe file name."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import Request, Response

from cleancut.jobs.model import BlobRef

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def quoted_etag(ref: BlobRef) -> str:
    tag = ref.etag.strip()
    if tag.startswith(('"', 'W/"')):
        return tag
    return f'"{tag}"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == wanted for part in header.split(","))


def disposition(filename: str, *, attachment: bool) -> str:
    ascii_name = _UNSAFE.sub("_", filename).strip("._") or "download"
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def blob_response(request: Request, ref: BlobRef, data: bytes, *, attachment: bool) -> Response:
    etag = quoted_etag(ref)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = disposition(ref.filename, attachment=attachment)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return Response(content=data, media_type=ref.media_type, headers=headers)
