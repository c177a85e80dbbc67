"""Helpers for the Adobe tests: a loopback "bucket" that hands out files on GET and records
what is PUT (or refuses it), standing in for pre-signed object-store URLs, and the checks
both API versions share."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.api.serverproc import ServerProcess

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STATES = {"pending", "running", "succeeded", "failed"}


@dataclass
class Bucket:
    base: str
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (body, type)
    puts: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (body, type)
    refuse: dict[str, int] = field(default_factory=dict)  # path -> status for PUT
    server: ServerProcess | None = None  # set by served()

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def bucket() -> Iterator[Bucket]:
    state = Bucket("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = state.files.get(self.path)
            if found is None:
                self._reply(404, b"<Error>NoSuchKey</Error>", "application/xml")
            else:
                self._reply(200, *found)

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path in state.refuse:
                self._reply(state.refuse[self.path], b"<Error>AccessDenied</Error>", "text/xml")
                return
            state.puts[self.path] = (body, self.headers.get("Content-Type", ""))
            self._reply(200, b"", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def photo_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


@contextmanager
def served(tmp_path: Path, key: str, files: dict[str, tuple[bytes, str]]) -> Iterator[Bucket]:
    """A real ``cleancut serve`` (one worker, the real model, loopback URLs allowed) with
    ``.server`` set on the bucket that holds ``files``, for the end-to-end tests."""
    settings = {"workers": "1", "api_keys": key, "allow_private_networks": "true"}
    server = ServerProcess(tmp_path / "data", settings)
    with bucket() as b:
        b.files.update(files)
        server.start()
        try:
            server.wait_ready()
            b.server = server
            yield b
        finally:
            server.stop()


def poll_status(http: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """An Adobe status document once it is ``succeeded`` or ``failed`` (or after 5 min)."""
    deadline = time.monotonic() + 300
    while (status := http.get(url, headers=headers).json())["status"] not in (
        "succeeded",
        "failed",
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    return dict(status)


def assert_cutout_of(data: bytes, photo: Path) -> None:
    """An RGBA PNG the photo's size, with a subject: not all opaque, not all transparent."""
    out = image(data)
    assert out.mode == "RGBA" and out.size == photo_size(photo)
    alpha = np.asarray(out.getchannel("A"))
    assert 0.05 < (alpha > 127).mean() < 0.95
