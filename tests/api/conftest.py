"""The real app (real JobService on SQLite + a temp folder) around the tiny ONNX model."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from cleancut.api.app import create_app
from cleancut.config import ServerSettings, Settings
from cleancut.core.models import ModelRegistry, ModelSpec
from cleancut.core.predict import ModelPool
from cleancut.core.runtimes import RuntimeConfig
from cleancut.core.weights import WeightsCache
from tests import tinymodels

KEY = "test-key-0123456789"
OTHER_KEY = "other-key-0123456789"
TERMINAL = {"succeeded", "failed", "canceled"}

MakeApp = Callable[..., FastAPI]


@pytest.fixture(scope="session")
def api_pool(tiny_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> ModelPool:
    """One runtime is enough here: the runtimes themselves are tested in tests/core."""
    cache = tmp_path_factory.mktemp("api-cache")
    return ModelPool(
        ModelRegistry([tiny_spec]), WeightsCache(cache), RuntimeConfig(runtime="onnxruntime")
    )


def server_settings(data_dir: Path, **server: Any) -> Settings:
    server.setdefault("rate_limit", {"per_minute": 0, "burst": 1})
    return Settings(
        default_model="tiny",
        max_pixels=4_000_000,
        server=ServerSettings(data_dir=data_dir, **server),
    )


@pytest.fixture
def make_app(tmp_path: Path, api_pool: ModelPool) -> MakeApp:
    def make(**server: Any) -> FastAPI:
        return create_app(
            server_settings(tmp_path / "data", **server), pool=api_pool, heartbeat=0.2
        )

    return make


@pytest.fixture
def client(make_app: MakeApp) -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as c:
        yield c


def png_bytes(image: Any = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(tinymodels.square_image() if image is None else image).save(buf, format=fmt)
    return buf.getvalue()


def submit(
    client: TestClient,
    data: bytes | None = None,
    options: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    import json

    files = {"file": ("square.png", png_bytes() if data is None else data, "image/png")}
    form = {"options": json.dumps(options)} if options is not None else {}
    return client.post("/v1/jobs", files=files, data=form, headers=headers or {})


def wait_done(
    client: TestClient, job_id: str, headers: dict[str, str] | None = None, limit: float = 60
) -> dict[str, Any]:
    """Poll until the job is terminal (a generous bound, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while True:
        r = client.get(f"/v1/jobs/{job_id}", headers=headers or {})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in TERMINAL or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(error) <= {"code", "message", "hint", "field"}
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """A loopback HTTP server handing out the square test image (an "internal" target)."""
    import http.server
    import threading

    body = png_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/square.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
