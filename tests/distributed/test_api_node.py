"""An API node of the distributed backend in-process (no workers): the backend setting picks
it, readiness checks the servers instead of the model, /metrics shows each queue's depth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cleancut.api.app import create_app
from cleancut.config import S3Settings, ServerSettings, Settings
from cleancut.core.models import ModelRegistry, ModelSpec
from cleancut.core.predict import ModelPool
from cleancut.core.runtimes import RuntimeConfig
from cleancut.core.weights import WeightsCache
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.pgstore import PgJobStore
from tests.distributed.services import wait_for
from tests.distributed.test_worker import png


def settings_for(config: DistributedConfig, **server: Any) -> Settings:
    s3 = config.s3
    values: dict[str, Any] = {
        "backend": "distributed",
        "database_url": config.database_url,
        "broker_url": config.broker_url,
        "blob_url": config.blob_url,
        "namespace": config.namespace,
        "s3": S3Settings(
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=SecretStr(s3.secret_access_key or ""),
            path_style=True,
        ),
        "rate_limit": {"per_minute": 0, "burst": 1},
        **server,
    }
    return Settings(default_model="tiny", server=ServerSettings(**values))


@pytest.fixture(scope="module")
def node_pool(tiny_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> ModelPool:
    cache = WeightsCache(tmp_path_factory.mktemp("node-cache"))
    return ModelPool(ModelRegistry([tiny_spec]), cache, RuntimeConfig(runtime="onnxruntime"))


@pytest.fixture
def api_node(
    config: DistributedConfig, store: PgJobStore, node_pool: ModelPool
) -> Iterator[TestClient]:
    app = create_app(settings_for(config), pool=node_pool, heartbeat=0.2)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_readiness_checks_the_servers_not_the_model(api_node: TestClient) -> None:
    r = api_node.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checks"] == {"database": "ok", "broker": "ok", "store": "ok", "events": "ok"}
    assert body["runtime"] is None  # no model in an API node
    assert api_node.get("/healthz").json()["checks"]["database"] == "ok"


def test_a_submitted_job_waits_in_its_model_queue(
    api_node: TestClient, config: DistributedConfig
) -> None:
    r = api_node.post("/v1/jobs", files={"file": ("a.png", png(), "image/png")})
    assert r.status_code == 202, r.text
    job = api_node.get(f"/v1/jobs/{r.json()['id']}").json()
    assert job["status"] == "queued"
    line = f'cleancut_queue_messages{{queue="{config.queue("tiny")}"}} 1.0'
    wait_for(lambda: line in api_node.get("/metrics").text, timeout=10, step=0.2)  # 2 s cache
    assert api_node.get(f"/v1/jobs/{job['id']}/original").content == png()  # from S3


def test_an_unreachable_broker_makes_the_node_unready(
    config: DistributedConfig, store: PgJobStore, node_pool: ModelPool
) -> None:
    settings = settings_for(config, broker_url="redis://127.0.0.1:1/0")
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"events_url": config.events_url})}
    )
    with TestClient(create_app(settings, pool=node_pool)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["broker"].startswith("error")
        assert client.get("/healthz").status_code == 200  # liveness stays up


def test_missing_settings_are_named(node_pool: ModelPool) -> None:
    from cleancut.errors import InvalidOptions

    settings = Settings(server=ServerSettings(backend="distributed", database_url="postgresql://x"))
    with pytest.raises(InvalidOptions, match=r"BROKER_URL.*BLOB_URL"):
        create_app(settings, pool=node_pool)


def test_presigned_downloads_redirect_to_the_object_store(
    config: DistributedConfig, store: PgJobStore, node_pool: ModelPool
) -> None:
    app = create_app(settings_for(config, presigned_downloads=True), pool=node_pool)
    with TestClient(app, raise_server_exceptions=False) as client:
        job_id = client.post("/v1/jobs", files={"file": ("a.png", png(), "image/png")}).json()["id"]
        r = client.get(f"/v1/jobs/{job_id}/original", follow_redirects=False)
        assert r.status_code == 307
        location = r.headers["location"]
        assert location.startswith(config.s3.endpoint_url or "") and "Signature" in location
        # the pre-signed URL needs no credentials (moto on loopback)
        assert httpx.get(location).content == png()
        # an attachment download still streams through the API node, with its headers
        attached = client.get(f"/v1/jobs/{job_id}/original?download=true")
        assert attached.status_code == 200 and attached.content == png()
        assert "attachment" in attached.headers["content-disposition"]
