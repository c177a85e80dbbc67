"""Server figures for the closing note of the server issue, measured on a real ``cleancut serve``
process with the real model (run from the repository root; ``make bench-server``):

* p50 / p99 latency of ``GET /v1/jobs/{id}`` from concurrent clients while the worker runs jobs;
* a queue-full burst: submissions accepted, rejected (429/503 with Retry-After) and lost;
* kill -9 in the middle of processing, then a restart: jobs submitted, finished and lost;
* the SSRF vectors tried and blocked, and the schemathesis cases run and 5xx answers
  (by running those test files with pytest).

"Lost" counts accepted jobs that do not end ``succeeded`` with a downloadable result.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.api.serverproc import TERMINAL, ServerProcess  # noqa: E402

PHOTO = REPO.parent / "shared" / "eval" / "people-removebg" / "images" / "p101.jpg"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def burst(server: ServerProcess, photo: bytes, count: int) -> dict[str, Any]:
    with httpx.Client(timeout=120) as http, ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: server.submit(http, photo), range(count)))
    accepted = [r.json()["id"] for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code in (429, 503)]
    with_retry_after = sum(1 for r in refused if r.headers.get("retry-after"))
    other = [r.status_code for r in answers if r.status_code not in (202, 429, 503)]
    return {
        "sent": count,
        "accepted": accepted,
        "rejected": len(refused),
        "with_retry_after": with_retry_after,
        "other": other,
    }


def get_latency(server: ServerProcess, ids: list[str], clients: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, total // clients)

    def run(n: int) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(per_client):
                job_id = ids[(n + i) % len(ids)]
                t0 = time.perf_counter()
                r = http.get(f"/v1/jobs/{job_id}")
                mine.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    wall = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "clients": clients,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "rps": len(latencies) / wall,
    }


def settle(server: ServerProcess, ids: list[str]) -> dict[str, int]:
    with httpx.Client(timeout=60) as http:
        jobs = server.wait_all(http, ids, timeout=900)
        ok = 0
        for job_id, job in jobs.items():
            if job["status"] == "succeeded" and "cutout" in job["results"]:
                r = http.get(f"{server.url}/v1/jobs/{job_id}/result")
                ok += r.status_code == 200 and len(r.content) == job["results"]["cutout"]["size"]
    statuses = [j["status"] for j in jobs.values()]
    return {
        "finished": ok,
        "failed": statuses.count("failed"),
        "unfinished": sum(s not in TERMINAL for s in statuses),
        "lost": len(ids) - ok,
    }


def kill9(server: ServerProcess, photo: bytes, count: int) -> dict[str, Any]:
    with httpx.Client(timeout=120) as http:
        ids = [server.submit(http, photo).json()["id"] for _ in range(count)]
        while (status := server.job(http, ids[0])["status"]) == "queued":
            time.sleep(0.01)
        killed_while = status
        server.kill9()
        server.start()
        server.wait_ready()
        result = settle(server, ids)
        attempts = server.job(http, ids[0])["attempts"]
    return {"submitted": count, "killed_while": killed_while, "first_attempts": attempts, **result}


def pytest_counts(args: list[str], pattern: str | None = None) -> tuple[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    out = proc.stdout + proc.stderr
    summary = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", out, flags=re.M)
    extra = ""
    if pattern and (m := re.search(pattern, out)):
        extra = m.group(0)
    return (summary[-1] if summary else out[-500:]), extra


def ssrf_breakdown(selection: list[str]) -> dict[str, int]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--collect-only",
            "-p",
            "no:cacheprovider",
            *selection,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if "::" in line:
            name = line.split("[", 1)[0]
            counts[name] = counts.get(name, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--kill-jobs", type=int, default=4)
    parser.add_argument("--no-pytest", action="store_true", help="skip the SSRF/schemathesis runs")
    args = parser.parse_args()
    photo = PHOTO.read_bytes()
    print(f"machine: {os.cpu_count()} CPUs; photo {PHOTO.name}; real model, 1 worker")

    with tempfile.TemporaryDirectory(prefix="cleancut-bench-") as tmp:
        settings = {"workers": "1", "queue_size": str(args.queue_size)}
        server = ServerProcess(Path(tmp) / "data", settings, log_path=Path(tmp) / "server.log")
        server.start()
        server.wait_ready()
        try:
            b = burst(server, photo, args.burst)
            lat = get_latency(server, b["accepted"], args.clients, args.requests)
            settled = settle(server, b["accepted"])
            k = kill9(server, photo, args.kill_jobs)
        finally:
            server.stop()

    print(
        f"\nGET /v1/jobs/{{id}} under load ({lat['clients']} clients, {lat['requests']} requests "
        f"while the worker runs jobs): p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
        f"mean {lat['mean_ms']:.1f} ms, {lat['rps']:.0f} req/s"
    )
    print(
        f"queue-full burst (queue {args.queue_size}, 1 worker): sent {b['sent']}, "
        f"accepted {len(b['accepted'])}, rejected {b['rejected']} "
        f"({b['with_retry_after']} with Retry-After), other {b['other']}, "
        f"lost {settled['lost']} (failed {settled['failed']}, unfinished {settled['unfinished']})"
    )
    print(
        f"kill -9 while {k['killed_while']}: submitted {k['submitted']}, finished {k['finished']}, "
        f"lost {k['lost']} (the interrupted job ran {k['first_attempts']} times)"
    )
    if args.no_pytest:
        return
    selection = [
        "tests/test_net.py",
        "tests/api/test_native.py",
        "-k",
        "ssrf or allow_private_never or redirect_to_forbidden or put_is_validated",
    ]
    ssrf, _ = pytest_counts(selection)
    print(f"SSRF vectors (each asserts a refusal before any connection): {ssrf}")
    for name, n in ssrf_breakdown(selection).items():
        print(f"  {n:4d}  {name}")
    st, tally = pytest_counts(["tests/api/test_schemathesis.py"], r"schemathesis: \{.*\}")
    print(f"schemathesis: {tally or st}")


if __name__ == "__main__":
    main()
