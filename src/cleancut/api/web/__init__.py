"""The web page: static files beside this module, served by cleancut itself.

``GET /`` is the page and ``GET /web/{name}`` its assets, from a fixed allow-list of file
types in this folder (never this module or anything below it). The page talks only to the
native ``/v1`` API; it needs no build step, CDN or external font.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

ROOT = Path(__file__).resolve().parent
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(?:js|css|svg)$")
#: Everything from this origin; images also from blob: URLs (results fetched with the API key).
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(path: Path, request: Request) -> Response:
    stat = path.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={**HEADERS, "ETag": etag})
    return FileResponse(
        path, media_type=MEDIA_TYPES[path.suffix], headers={**HEADERS, "ETag": etag}
    )


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def page(request: Request) -> Response:
        return _file(ROOT / "index.html", request)

    @router.get("/web/{name}")
    def asset(name: str, request: Request) -> Response:
        path = ROOT / name
        if not _NAME.fullmatch(name) or not path.is_file():
            raise HTTPException(404)
        return _file(path, request)

    return router
