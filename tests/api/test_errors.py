"""One error envelope everywhere: typed errors, validation, unknown routes, methods, crashes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cleancut.api.app import create_app
from cleancut.config import ServerSettings, Settings
from cleancut.core.predict import ModelPool
from cleancut.errors import QueueFull
from cleancut.jobs.service import JobService
from tests.api.conftest import assert_error, png_bytes


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/v1/jobs/abc/nope"), 404, "not_found")
    assert_error(client.put("/v1/jobs"), 405, "method_not_allowed")
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def test_typed_errors_keep_their_code_and_hint(client: TestClient) -> None:
    err = assert_error(client.get("/v1/jobs/0123456789abcdef"), 404, "job_not_found")
    assert "0123456789abcdef" in err["message"]


def test_validation_errors_name_the_field(client: TestClient) -> None:
    err = assert_error(client.get("/v1/jobs", params={"limit": "many"}), 422, "validation_error")
    assert err["field"] == "limit"
    err = assert_error(
        client.post("/v1/jobs", headers={"Idempotency-Key": "k" * 300}, json={}), 422
    )
    assert err["field"] == "idempotency-key"


class Exploding(JobService):
    """A service whose reads crash with a bug-like error; the client must learn nothing."""

    def __init__(self, inner: JobService) -> None:
        self.inner = inner

    def start(self) -> None: ...

    def stop(self, timeout: float = 10) -> None: ...

    def stats(self) -> Any:
        return self.inner.stats()

    def register_webhook_payload(self, name: str, render: Any) -> None:
        self.inner.register_webhook_payload(name, render)

    def get(self, job_id: str, owner: str | None = None) -> Any:
        raise RuntimeError("secret internals /etc/cleancut")

    def submit(self, sub: Any) -> Any:
        raise QueueFull("the job queue is full (2 waiting)", retry_after=7.2)


def test_unexpected_errors_are_a_bare_500(tmp_path: Any, api_pool: ModelPool) -> None:
    settings = Settings(default_model="tiny", server=ServerSettings(data_dir=tmp_path))
    real = create_app(settings, pool=api_pool).state.cleancut.service
    app = create_app(settings, pool=api_pool, service=Exploding(real))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/v1/jobs/0123456789abcdef")
        err = assert_error(r, 500, "internal_error")
        assert "secret" not in r.text
        assert "RuntimeError" not in r.text
        full = client.post("/v1/jobs", files={"file": ("a.png", png_bytes(), "image/png")})
        assert_error(full, 503, "queue_full")
        assert full.headers["retry-after"] == "8"
        assert err["message"]
