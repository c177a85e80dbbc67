"""Two API nodes and two workers as real processes, on PostgreSQL, Redis (broker and events)
and moto's S3 server: 50 jobs through both APIs, SSE from the node that did not take the job,
kill -9 of a worker mid-job, and a restart of Redis.

The figures each test measures are written to test-artifacts/scaleout-cluster.json.
"""

from __future__ import annotations

import io
import json
import secrets
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cleancut.jobs.distributed import migrate
from cleancut.jobs.distributed.pgstore import PgJobStore
from tests import tinymodels
from tests.distributed import cluster, services
from tests.distributed.conftest import Models

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIGURES: dict[str, Any] = {}


def png(seed: int = 0, size: tuple[int, int] = (200, 150)) -> bytes:
    img = tinymodels.square_image(*size)
    img[0, 0] = (seed % 256, seed // 256 % 256, 7)  # distinct inputs, same subject
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def record(d: Deployment, name: str, **figures: Any) -> None:
    FIGURES.setdefault(d.broker, {})[name] = figures
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "scaleout-cluster.json").write_text(json.dumps(FIGURES, indent=2))


class Deployment:
    def __init__(
        self, broker: str, c: cluster.Cluster, store: PgJobStore, s3: Any, bucket: str
    ) -> None:
        self.broker = broker
        self.cluster = c
        self.store = store
        self.s3 = s3
        self.bucket = bucket
        self.http = httpx.Client(timeout=60)

    @property
    def a(self) -> cluster.Api:
        return self.cluster.apis[0]

    @property
    def b(self) -> cluster.Api:
        return self.cluster.apis[1]

    def blob(self, job_id: str, name: str) -> bytes:
        obj = self.s3.get_object(Bucket=self.bucket, Key=f"blobs/jobs/{job_id}/{name}")
        data: bytes = obj["Body"].read()
        return data

    def worker_named(self, name: str) -> cluster.Proc:
        return next(w for w in self.cluster.workers if w.name == name)


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def deployment(
    request: pytest.FixtureRequest,
    models: Models,
    moto: services.MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The same code on either broker: only the broker URL differs (events stay on Redis)."""
    services.require("Redis", services.REDIS, 6379)
    broker = services.REDIS
    if request.param == "rabbitmq":
        services.require("RabbitMQ", services.AMQP, 5672)
        broker = services.AMQP
    namespace = f"cctest{secrets.token_hex(4)}"
    bucket = moto.create_bucket()
    root = tmp_path_factory.mktemp(f"cluster-{request.param}")
    with services.throwaway_database() as db:
        env = cluster.settings(
            database_url=db,
            broker_url=broker,
            events_url=services.REDIS,
            blob_url=f"s3://{bucket}/blobs",
            namespace=namespace,
            models_file=models.file,
            cache_dir=models.cache,
            s3={
                "endpoint_url": moto.endpoint,
                "region": moto.region,
                "access_key_id": moto.key,
                "secret_access_key": moto.secret,
                "path_style": "true",
            },
            worker_lease="2",
            redeliver_after="5",
        )
        c = cluster.Cluster(root, env)
        store = PgJobStore(migrate.make_engine(db, pool_size=2))
        try:
            procs = [c.api("api-a"), c.api("api-b"), c.worker("w1"), c.worker("w2")]
            for proc in procs:
                proc.start()
            for api in c.apis:
                api.wait_ready()
            deployment = Deployment(request.param, c, store, moto.client(), bucket)
            yield deployment
            deployment.http.close()
            deployment.s3.close()
        finally:
            c.stop()
            store.close()
            services.forget_redis_keys(services.REDIS, namespace)
            if broker == services.AMQP:
                services.forget_amqp_queues(broker, [f"{namespace}.tiny", f"{namespace}.slow"])


def test_fifty_jobs_through_two_apis_each_succeed_exactly_once(deployment: Deployment) -> None:
    d = deployment
    started = time.monotonic()
    ids = [cluster.submit(d.http, d.a if i % 2 == 0 else d.b, png(i)) for i in range(50)]
    jobs = cluster.wait_all(d.http, d.b, ids)
    elapsed = time.monotonic() - started
    statuses = Counter(j["status"] for j in jobs.values())
    outcomes = d.cluster.outcomes()
    runs = {job_id: outcomes.get(job_id, []).count("succeeded") for job_id in ids}
    ran_on = Counter(d.store.worker_of(job_id) for job_id in ids)
    record(
        d,
        "fifty_jobs",
        submitted=len(ids),
        succeeded=statuses["succeeded"],
        duplicated=sum(n - 1 for n in runs.values() if n > 1),
        lost=sum(1 for j in jobs.values() if j["status"] not in cluster.TERMINAL),
        seconds=round(elapsed, 2),
        per_worker=dict(ran_on),
    )
    assert statuses == {"succeeded": 50}, statuses
    assert set(runs.values()) == {1}, "each job succeeded in exactly one run"
    assert all(j["attempts"] == 1 for j in jobs.values())
    assert set(ran_on) == {"w1", "w2"}, ran_on  # both workers took jobs
    for job_id, body in jobs.items():
        stored = d.blob(job_id, "cutout")  # the result is in S3 ...
        assert len(stored) == body["results"]["cutout"]["size"]
        # ... and the other API node serves the same bytes
        other = d.a if ids.index(job_id) % 2 else d.b
        assert d.http.get(f"{other.url}/v1/jobs/{job_id}/result").content == stored


def test_sse_from_the_node_that_did_not_take_the_job(deployment: Deployment) -> None:
    d = deployment
    job_id = cluster.submit(d.http, d.a, png(1000), model="slow")
    events = list(cluster.sse_events(d.http, f"{d.b.url}/v1/jobs/{job_id}/events"))
    names = [name for name, _ in events]
    assert names[-1] == "complete", events
    assert "progress" in names, names
    stages = [data["stage"] for name, data in events if name == "progress"]
    assert "inference" in stages or "refine" in stages, stages
    record(d, "sse_other_node", events=len(events), stages=sorted(set(filter(None, stages))))


def test_a_worker_killed_mid_job_hands_it_to_the_other(deployment: Deployment) -> None:
    d = deployment
    job_id = cluster.submit(d.http, d.a, png(2000), model="slow")

    def in_inference() -> str | None:
        job = d.store.get(job_id)
        if job is not None and job.status.value == "processing" and job.stage == "inference":
            return d.store.worker_of(job_id)
        return None

    victim_name = services.wait_for(in_inference, timeout=60)
    victim = d.worker_named(victim_name)
    killed_at = time.monotonic()
    victim.kill9()
    done = cluster.wait_all(d.http, d.b, [job_id], timeout=120)[job_id]
    recovered = time.monotonic() - killed_at
    survivor = d.store.worker_of(job_id)
    record(
        d,
        "worker_kill",
        killed=victim_name,
        finished_on=survivor,
        attempts=done["attempts"],
        status=done["status"],
        seconds_from_kill_to_success=round(recovered, 2),
        lease_seconds=2,
    )
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert survivor is not None and survivor != victim_name
    assert len(d.blob(job_id, "cutout")) == done["results"]["cutout"]["size"]
    outcomes = d.cluster.outcomes()[job_id]
    assert outcomes.count("succeeded") == 1, outcomes
    victim.start()  # back to two workers for what follows


def _redis_port_open() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_new_jobs_go_through_after_a_redis_restart(deployment: Deployment) -> None:
    d = deployment
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, timeout=30)
    services.wait_for(lambda: not _redis_port_open(), timeout=30)
    # While Redis is down, a job is still accepted (it is in PostgreSQL); its message is
    # published by a worker's sweep once the broker is back.
    during = cluster.submit(d.http, d.a, png(3000))
    subprocess.run(services.REDIS_START, check=True, timeout=30)
    services.wait_for(_redis_port_open, timeout=30)
    restarted = time.monotonic()
    for api in d.cluster.apis:
        api.wait_ready(timeout=60)
    ids = [cluster.submit(d.http, d.a if i % 2 else d.b, png(4000 + i)) for i in range(10)]
    jobs = cluster.wait_all(d.http, d.a, [*ids, during], timeout=120)
    statuses = Counter(j["status"] for j in jobs.values())
    record(
        d,
        "redis_restart",
        submitted_after=len(ids),
        submitted_during_outage=1,
        succeeded=statuses["succeeded"],
        seconds_to_all_done=round(time.monotonic() - restarted, 2),
    )
    assert statuses == {"succeeded": 11}, jobs
    assert all(w.alive for w in d.cluster.workers)
