"""Fixtures of the distributed backend's tests: a throwaway PostgreSQL database, moto's S3
server, a Redis namespace of the test's own, and the test models registered in a models file
that worker and API processes read."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cleancut.core.models import ModelRegistry, spec_from_file
from cleancut.core.types import Options
from cleancut.jobs.distributed import migrate
from cleancut.jobs.distributed.config import DistributedConfig
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.model import Job, JobStatus, new_job_id
from cleancut.storage.s3 import S3Options
from tests import tinymodels
from tests.distributed import services
from tests.distributed.slowmodel import slow_model

TINY = Options(model="tiny")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with services.throwaway_database() as url:
        yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[PgJobStore]:
    """The session's database, emptied for each test."""
    s = PgJobStore(migrate.make_engine(pg_url, pool_size=4))
    with s.engine.begin() as conn:
        conn.execute(text("TRUNCATE cleancut_jobs, cleancut_workers"))
    yield s
    s.close()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.MotoServer]:
    with services.moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def bucket(moto: services.MotoServer) -> str:
    return moto.create_bucket()


@pytest.fixture
def s3_options(moto: services.MotoServer) -> S3Options:
    return S3Options(
        endpoint_url=moto.endpoint,
        region=moto.region,
        access_key_id=moto.key,
        secret_access_key=moto.secret,
        path_style=True,
    )


@pytest.fixture
def redis_url() -> str:
    services.require("Redis", services.REDIS, 6379)
    return services.REDIS


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """Queue names and event channels of this test only; its Redis keys are deleted after."""
    ns = f"cctest{secrets.token_hex(4)}"
    yield ns
    services.forget_redis_keys(redis_url, ns)


@pytest.fixture
def config(
    pg_url: str, redis_url: str, namespace: str, bucket: str, s3_options: S3Options
) -> DistributedConfig:
    return DistributedConfig(
        database_url=pg_url,
        broker_url=redis_url,
        events_url=redis_url,
        blob_url=f"s3://{bucket}/blobs",
        s3=s3_options,
        namespace=namespace,
        default_model="tiny",
        lease_seconds=2.0,
        redeliver_after=5.0,
        job_timeout=60.0,
    )


@dataclass(frozen=True)
class Models:
    file: Path  # CLEANCUT_MODELS_FILE for the processes
    cache: Path  # CLEANCUT_CACHE_DIR


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """``tiny`` (fast) and ``slow`` (seconds of real inference) in a models file."""
    root = tmp_path_factory.mktemp("distributed-models")
    registry = ModelRegistry.load(root / "models.json")
    tiny = tinymodels.brightness_model(root / "tiny.onnx")
    registry.register(spec_from_file("tiny", tiny, "isnet", input_size=(tinymodels.SIZE,) * 2))
    slow = slow_model(root / "slow.onnx")
    registry.register(spec_from_file("slow", slow, "isnet", input_size=(640, 640)))
    return Models(root / "models.json", root / "cache")


def new_job(status: JobStatus = JobStatus.QUEUED, **kw: Any) -> Job:
    now = kw.pop("created_at", 1000.0)
    return Job(
        id=kw.pop("id", new_job_id()),
        status=status,
        options=kw.pop("options", TINY),
        source_url=kw.pop("source_url", None),
        owner=kw.pop("owner", None),
        idempotency_key=kw.pop("idempotency_key", None),
        webhook=None,
        parent_id=None,
        created_at=now,
        updated_at=now,
        started_at=None,
        finished_at=None,
        expires_at=kw.pop("expires_at", now + 3600),
        **kw,
    )
