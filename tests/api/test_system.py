"""Probes, the model list and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cleancut.api.app import create_app
from cleancut.config import ServerSettings, Settings
from cleancut.core.predict import ModelPool
from tests.api.conftest import assert_error


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_the_model(client: TestClient) -> None:
    import time

    deadline = time.monotonic() + 30
    while (r := client.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True
    assert body["model"] == "tiny"
    assert body["runtime"].startswith("onnxruntime/")
    assert body["precision"] == "auto"


def test_readyz_is_503_while_the_model_cannot_load(tmp_path: Path, api_pool: ModelPool) -> None:
    settings = Settings(
        default_model="not-registered", server=ServerSettings(data_dir=tmp_path / "data")
    )
    with TestClient(create_app(settings, pool=api_pool)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False
        assert r.json()["runtime"] is None
        assert client.get("/healthz").status_code == 200


def test_models(client: TestClient) -> None:
    models = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["tiny"]
    assert models[0]["default"] is True


def test_openapi_documents_every_route_and_error(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/result",
        "/v1/jobs/{job_id}/mask",
        "/v1/jobs/{job_id}/original",
        "/v1/jobs/{job_id}/effects",
        "/v1/remove",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    post = paths["/v1/jobs"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/JobOut"
    )
    for status in ("401", "413", "415", "422", "429", "503"):
        ref = post["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorEnvelope"), status
    schemas = doc["components"]["schemas"]
    assert {"RemovalOptions", "JobCreate", "EffectsRequest", "BackgroundOptions"} <= set(schemas)
    assert {"ApiKey", "Bearer"} <= set(doc["components"]["securitySchemes"])
    assert client.get("/docs").status_code == 200
    assert_error(client.get("/docs/nope"), 404)
