"""Throughput of the distributed backend with 1 worker against 2 workers (run from the
repository root; needs the services of ``scripts/services.sh``; moto stands in for S3).

One API node and N ``cleancut worker`` processes (concurrency 1, one inference thread each)
on PostgreSQL, Redis and moto's S3 server. Each worker first runs one job (the model load is
not measured); then ``--jobs`` jobs are submitted at once and the clock runs from the first
submission to the last job settled. The real ISNet model runs on the evaluation photos when
its weights are cached, else the test suite's slow model on a synthetic image.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.distributed import cluster, services  # noqa: E402
from tests.distributed.slowmodel import slow_model  # noqa: E402
from tests.distributed.test_cluster import png  # noqa: E402

from cleancut.core.models import ModelRegistry, spec_from_file  # noqa: E402
from cleancut.core.weights import WeightsCache, default_cache_dir  # noqa: E402

PHOTOS = REPO.parent / "shared" / "eval" / "people-removebg" / "images"


def inputs(model: str, count: int) -> list[bytes]:
    if model == "isnet-general" and PHOTOS.is_dir():
        photos = sorted(PHOTOS.glob("*.jpg"))[:count]
        return [p.read_bytes() for p in photos] * (count // max(1, len(photos)) + 1)
    return [png(i, (800, 600)) for i in range(count)]


def run(workers: int, jobs: int, model: str, root: Path, env: dict[str, str]) -> dict[str, Any]:
    namespace = f"ccbench{secrets.token_hex(4)}"
    env = {**env, "CLEANCUT_SERVER__NAMESPACE": namespace}
    c = cluster.Cluster(root / f"w{workers}-{namespace}", env)
    images = inputs(model, jobs + workers)
    try:
        api = c.api("api")
        procs: list[cluster.Proc] = [
            api,
            *(c.worker(f"w{i}", models=model) for i in range(workers)),
        ]
        for proc in procs:
            proc.start(timeout=300)
        api.wait_ready()
        with httpx.Client(timeout=120) as http:
            warm = [cluster.submit(http, api, images[i], model) for i in range(workers)]
            cluster.wait_all(http, api, warm, timeout=600)
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                ids = list(
                    pool.map(
                        lambda img: cluster.submit(http, api, img, model),
                        images[workers : workers + jobs],
                    )
                )
            done = cluster.wait_all(http, api, ids, timeout=1800)
            elapsed = time.monotonic() - started
        load = os.getloadavg()[0]
        statuses = [j["status"] for j in done.values()]
        totals = [j["timings"].get("total", 0.0) for j in done.values()]
        return {
            "workers": workers,
            "jobs": jobs,
            "succeeded": statuses.count("succeeded"),
            "seconds": round(elapsed, 2),
            "jobs_per_second": round(jobs / elapsed, 3),
            "mean_job_seconds": round(statistics.fmean(totals), 3) if totals else None,
            "load_average_1min": round(load, 2),  # other work on the machine skews the figures
        }
    finally:
        c.stop()
        services.forget_redis_keys(services.REDIS, namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--model", choices=["auto", "isnet-general", "slow"], default="auto")
    parser.add_argument("--out", type=Path, default=REPO / "test-artifacts" / "scaleout-bench.json")
    args = parser.parse_args()
    for name, url, port in (
        ("PostgreSQL", services.POSTGRES, 5432),
        ("Redis", services.REDIS, 6379),
    ):
        if not services.reachable(url, port):
            sys.exit(f"{name} is not reachable at {url}: run scripts/services.sh")
    cache = default_cache_dir()
    model = args.model
    if model == "auto":
        registry = ModelRegistry.load(None)
        cached = WeightsCache(cache).status(registry.get("isnet-general")) == "cached"
        model = "isnet-general" if cached else "slow"
    with tempfile.TemporaryDirectory(prefix="cleancut-scaleout-") as tmp:
        root = Path(tmp)
        registry = ModelRegistry.load(root / "models.json")
        slow = slow_model(root / "slow.onnx")
        registry.register(spec_from_file("slow", slow, "isnet", input_size=(640, 640)))
        with (
            services.throwaway_database() as db,
            services.moto_server(root / "moto.log") as moto,
        ):
            bucket = moto.create_bucket()
            env = cluster.settings(
                database_url=db,
                broker_url=services.REDIS,
                events_url=services.REDIS,
                blob_url=f"s3://{bucket}/blobs",
                namespace="unused",
                models_file=root / "models.json",
                cache_dir=cache,
                s3={
                    "endpoint_url": moto.endpoint,
                    "region": moto.region,
                    "access_key_id": moto.key,
                    "secret_access_key": moto.secret,
                    "path_style": "true",
                },
            )
            env["CLEANCUT_DEFAULT_MODEL"] = model
            results = [run(int(n), args.jobs, model, root, env) for n in args.workers.split(",")]
    base = results[0]["jobs_per_second"]
    print(f"model {model}, {args.jobs} jobs, each worker: concurrency 1, 1 inference thread")
    print(f"{'workers':>8} {'seconds':>8} {'jobs/s':>8} {'x':>6} {'job s':>7} {'load':>5} ok")
    for r in results:
        print(
            f"{r['workers']:>8} {r['seconds']:>8} {r['jobs_per_second']:>8} "
            f"{r['jobs_per_second'] / base:>6.2f} {r['mean_job_seconds']:>7} "
            f"{r['load_average_1min']:>5} "
            f"{r['succeeded']}/{r['jobs']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": model, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
