"""Server throughput, latency, memory and cold start of a real ``cleancut serve`` process.

    .venv/bin/python bench/server_speed.py [--jobs 24] [--clients 8]

* **Throughput**: ``--clients`` concurrent clients post photos of 1, 4 and 12 MP (made as in
  ``bench/speed.py``) to ``POST /v1/remove`` until ``--jobs`` are done (after an untimed
  warm-up), for each server configuration (concurrent jobs, OpenVINO's mode). Reports
  images/s, p50/p95 latency and the ratio to the bare model's throughput (1024² inference
  alone, in a loop, in this process, on the same runtime, in whichever of latency and
  throughput mode is faster).
* **Memory**: the server's peak RSS (``VmHWM``) after each configuration, which includes
  its jobs at 12 MP running concurrently; with ``--soak N``, RSS every 100 jobs over N
  sequential jobs, and the growth after the first 100 (allocator and caches settle by then).
* **Many 12 MP jobs at once**: with ``--big N``, N clients post the 12 MP photo at the same
  moment to a fresh server of each configuration, which queues what it cannot run; reports
  the server's peak RSS and the wall time until all N cut-outs are back.
* **Cold start**: ``cleancut serve`` to ``/readyz`` green, first with an empty OpenVINO
  compiled-model cache, then again once the first start has filled it.
"""

from __future__ import annotations

import argparse
import os
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

from tests.api.serverproc import ServerProcess, real_cache_dir  # noqa: E402

from _machine import command_line, machine, source_id  # noqa: E402
from speed import EVAL, make_input  # noqa: E402

#: (label, photo under ../shared/eval, megapixels)
PHOTOS = [
    ("1 MP", "people-removebg/images/p120.jpg", 1.0),
    ("4 MP", "davis16/images/blackswan_00000.jpg", 4.0),
    ("12 MP", "alphamatting/images/GT22.png", 12.0),
]
CONFIGS = {
    "1 job at a time": {"WORKERS": "1"},
    "2 jobs at a time": {"WORKERS": "2"},
    "2 jobs at a time, latency mode": {"WORKERS": "2"},
}
#: Inference settings per configuration. Two workers get two infer requests in throughput
#: mode by default (one single-threaded OpenVINO stream each, and each job's other work on
#: one thread); the last row is the earlier setting, two requests on one two-thread stream.
CONFIG_ENV = {"2 jobs at a time, latency mode": {"CLEANCUT_INFERENCE__MODE": "latency"}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def bare_model_rate(runs: int) -> tuple[float, str]:
    """Images/s of the model alone, 1024² inference in a loop (no decode, no matte), at the
    better of its two modes: one request on every thread (latency), and two requests side
    by side on one stream each (throughput)."""
    import numpy as np

    from cleancut.config import Settings

    settings = Settings()
    best, runtime = 0.0, ""
    for jobs in (1, 2):
        seg = settings.model_pool(jobs=jobs).get(settings.default_model)
        x = seg.preprocess(np.zeros((1024, 1024, 3), np.uint8))

        def loop(n: int, run: Any = seg.session.run, x: Any = x) -> None:
            for _ in range(n):
                run(x)

        loop(1)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(loop, [runs] * jobs))
        rate = jobs * runs / (time.perf_counter() - t0)
        print(f"bare model, {seg.runtime}: {rate:.3f} images/s", file=sys.stderr, flush=True)
        if rate > best:
            best, runtime = rate, seg.runtime
    return best, runtime


def load(
    server: ServerProcess, photos: list[tuple[str, bytes]], jobs: int, clients: int
) -> dict[str, Any]:
    # Untimed: each photo once per worker, so that first-use costs (the runtime's first
    # inference, page faults of the pools) stay out of the steady-state rate.
    with httpx.Client(timeout=600) as http:
        for _, data in photos * 2:
            http.post(f"{server.url}/v1/remove", files={"file": ("p.jpg", data, "image/jpeg")})
    latencies: dict[str, list[float]] = {}
    errors = 0
    lock = threading.Lock()
    counter = iter(range(jobs))

    def client() -> None:
        nonlocal errors
        with httpx.Client(timeout=600) as http:
            for n in counter:
                name, data = photos[n % len(photos)]
                t0 = time.perf_counter()
                r = http.post(
                    f"{server.url}/v1/remove", files={"file": ("p.jpg", data, "image/jpeg")}
                )
                elapsed = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.setdefault(name, []).append(elapsed)
                    else:
                        errors += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    wall = time.perf_counter() - t0
    every = [v for vs in latencies.values() for v in vs]
    assert server.proc is not None
    return {
        "done": len(every),
        "errors": errors,
        "wall": wall,
        "rate": len(every) / wall,
        "p50": percentile(every, 50),
        "p95": percentile(every, 95),
        "by_size": {k: (percentile(v, 50), percentile(v, 95)) for k, v in latencies.items()},
        "peak_rss": rss_mib(server.proc.pid, "VmHWM"),
    }


def cold_start(tmp: Path) -> list[float]:
    """Seconds from spawn to /readyz twice: empty compiled-model cache, then filled."""
    cache = tmp / "cold-cache"
    cache.mkdir()
    (cache / "models").symlink_to(Path(real_cache_dir()) / "models")
    saved = os.environ.get("CLEANCUT_CACHE_DIR")
    os.environ["CLEANCUT_CACHE_DIR"] = str(cache)
    out = []
    try:
        for i in range(2):
            server = ServerProcess(tmp / f"cold-data-{i}", log_path=tmp / f"cold-{i}.log")
            t0 = time.perf_counter()
            server.start()
            server.wait_ready()
            out.append(time.perf_counter() - t0)
            server.stop()
    finally:
        if saved is None:
            os.environ.pop("CLEANCUT_CACHE_DIR", None)
        else:
            os.environ["CLEANCUT_CACHE_DIR"] = saved
    return out


def soak(server: ServerProcess, photo: bytes, jobs: int) -> list[tuple[int, float]]:
    assert server.proc is not None
    points = [(0, rss_mib(server.proc.pid))]
    with httpx.Client(timeout=600) as http:
        for n in range(1, jobs + 1):
            http.post(f"{server.url}/v1/remove", files={"file": ("p.jpg", photo, "image/jpeg")})
            if n % 100 == 0:
                points.append((n, rss_mib(server.proc.pid)))
                print(f"soak: {n} jobs, RSS {points[-1][1]:.0f} MiB", file=sys.stderr, flush=True)
    return points


def burst_12mp(server: ServerProcess, photo: bytes, clients: int) -> dict[str, Any]:
    """``clients`` simultaneous 12 MP submissions to a fresh server: peak RSS and wall time."""
    assert server.proc is not None
    go = threading.Barrier(clients)
    codes: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=900) as http:
            go.wait()
            r = http.post(f"{server.url}/v1/remove", files={"file": ("p.jpg", photo, "image/jpeg")})
            with lock:
                codes.append(r.status_code)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return {
        "done": codes.count(200),
        "errors": len(codes) - codes.count(200),
        "wall": time.perf_counter() - t0,
        "peak_rss": rss_mib(server.proc.pid, "VmHWM"),
    }


def growth(points: list[tuple[int, float]]) -> str:
    settled = [m for n, m in points if n >= 100]
    if len(settled) < 2:
        return ""
    return f"; growth from job 100 to job {points[-1][0]}: {settled[-1] / settled[0] - 1:+.1%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--soak", type=int, default=0, help="sequential 1 MP jobs for RSS growth")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--big", type=int, default=8, help="simultaneous 12 MP jobs (0: skip)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rate_before, runtime = bare_model_rate(10)
    results: dict[str, dict[str, Any]] = {}
    bursts: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cleancut-server-speed-") as tmp_name:
        tmp = Path(tmp_name)
        photos = []
        for i, (name, rel, mp) in enumerate(PHOTOS):
            path = make_input(EVAL / rel, mp, tmp / f"{i}.jpg", seed=i)
            photos.append((name, path.read_bytes()))
        cold = [] if args.no_cold_start else cold_start(tmp)
        soak_points: list[tuple[int, float]] = []
        for label, settings in CONFIGS.items():
            extra = CONFIG_ENV.get(label, {})
            os.environ.update(extra)
            server = ServerProcess(tmp / f"data-{len(results)}", settings, log_path=tmp / "s.log")
            try:
                server.start()
                server.wait_ready()
                results[label] = load(server, photos, args.jobs, args.clients)
                if args.soak and not soak_points:
                    soak_points = soak(server, photos[0][1], args.soak)
            finally:
                server.stop()
            if args.big:
                big = ServerProcess(tmp / f"big-{len(bursts)}", settings, log_path=tmp / "b.log")
                try:
                    big.start()
                    big.wait_ready()
                    bursts[label] = burst_12mp(big, photos[-1][1], args.big)
                finally:
                    big.stop()
            for k in extra:
                os.environ.pop(k, None)
    # The machine's load drifts: the bare model is timed before and after the servers.
    rate_after, _ = bare_model_rate(10)
    rate = (rate_before + rate_after) / 2
    print(f"Machine: {machine()}")
    print(f"Code: {source_id()}")
    print(f"Command: {command_line()}")
    print(
        "Load average (1/5/15 min) before: {:.2f}/{:.2f}/{:.2f}".format(*load_before)
        + ", after: {:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())
        + f"; wall time {time.perf_counter() - t_start:.0f} s"
    )
    print(
        f"Bare model ({runtime}, 1024² inference in a loop, the better of latency and "
        f"throughput mode): {rate:.3f} images/s "
        f"(mean of {rate_before:.3f} before and {rate_after:.3f} after the servers)"
    )
    print(f"{args.clients} clients, {args.jobs} jobs cycling 1, 4 and 12 MP JPEGs → PNG cut-outs")
    print()
    print(
        "| server | done | errors | images/s | vs bare model | p50 s | p95 s | "
        "p50/p95 1 MP | p50/p95 12 MP | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        one = r["by_size"].get("1 MP", (0, 0))
        big = r["by_size"].get("12 MP", (0, 0))
        print(
            f"| {label} | {r['done']} | {r['errors']} | {r['rate']:.3f} | {r['rate'] / rate:.0%} "
            f"| {r['p50']:.1f} | {r['p95']:.1f} | {one[0]:.1f}/{one[1]:.1f} "
            f"| {big[0]:.1f}/{big[1]:.1f} | {r['peak_rss']:.0f} |"
        )
    if bursts:
        print()
        print(f"{args.big} simultaneous 12 MP submissions to a fresh server:")
        print()
        print("| server | done | errors | wall s | peak RSS MiB |")
        print("|---|---|---|---|---|")
        for label, b in bursts.items():
            print(
                f"| {label} | {b['done']} | {b['errors']} | {b['wall']:.1f} | {b['peak_rss']:.0f} |"
            )
    if cold:
        print()
        print(
            f"Cold start to /readyz: {cold[0]:.1f} s with an empty OpenVINO cache, "
            f"{cold[1]:.1f} s once it is filled"
        )
    if soak_points:
        print()
        print(
            "RSS over sequential 1 MP jobs: "
            + ", ".join(f"{n}: {m:.0f} MiB" for n, m in soak_points)
            + growth(soak_points)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
