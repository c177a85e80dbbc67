"""Real processes of a distributed deployment on loopback: API nodes (``cleancut serve``) and
workers (``cleancut worker``), all configured through CLEANCUT_* variables as in production.
Used by tests/distributed/test_cluster*.py and bench/scaleout.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.polling import sse_events as sse_events

TERMINAL = {"succeeded", "failed", "canceled"}
_URL = re.compile(r"serving on (http://\S+)")
CLI = [sys.executable, "-m", "cleancut.cli"]


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: re.Pattern[str]
    proc: subprocess.Popen[bytes] | None = None
    match: re.Match[str] | None = None

    def start(self, timeout: float = 120) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"---- start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            offset = log.tell()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if m := self.ready.search(text):
                self.match = m
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start:\n{self.log()[-3000:]}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Api(Proc):
    @property
    def url(self) -> str:
        assert self.match is not None
        return self.match.group(1)

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=10)
                last = r.text
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready: {last}\n{self.log()[-2000:]}")


def base_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The process environment: no CLEANCUT_* from outside, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCUT_")}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def settings(
    *,
    database_url: str,
    broker_url: str,
    events_url: str,
    blob_url: str,
    namespace: str,
    models_file: Path,
    cache_dir: Path,
    s3: Mapping[str, str] | None = None,
    **server: str,
) -> dict[str, str]:
    out = {
        "CLEANCUT_MODELS_FILE": str(models_file),
        "CLEANCUT_CACHE_DIR": str(cache_dir),
        "CLEANCUT_DEFAULT_MODEL": "tiny",
        "CLEANCUT_NPM": "cleancut-tests-no-such-npm",
        "CLEANCUT_INFERENCE__RUNTIME": "onnxruntime",
        "CLEANCUT_INFERENCE__THREADS": "1",
        "CLEANCUT_SERVER__BACKEND": "distributed",
        "CLEANCUT_SERVER__DATABASE_URL": database_url,
        "CLEANCUT_SERVER__BROKER_URL": broker_url,
        "CLEANCUT_SERVER__EVENTS_URL": events_url,
        "CLEANCUT_SERVER__BLOB_URL": blob_url,
        "CLEANCUT_SERVER__NAMESPACE": namespace,
        "CLEANCUT_SERVER__RATE_LIMIT__PER_MINUTE": "0",
        "CLEANCUT_SERVER__QUEUE_SIZE": "1000",
    }
    out.update({f"CLEANCUT_SERVER__S3__{k.upper()}": v for k, v in (s3 or {}).items()})
    out.update({f"CLEANCUT_SERVER__{k.upper()}": v for k, v in server.items()})
    return out


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    apis: list[Api] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    def api(self, name: str) -> Api:
        argv = [*CLI, "serve", "--port", "0", "--log-level", "info"]
        api = Api(name, argv, base_env(self.env), self.root / f"{name}.log", _URL)
        self.apis.append(api)
        return api

    def worker(
        self, name: str, models: str = "tiny,slow", concurrency: int = 1, **env: str
    ) -> Proc:
        argv = [
            *CLI,
            "worker",
            "--models",
            models,
            "--concurrency",
            str(concurrency),
            "--name",
            name,
            "--log-level",
            "info",
        ]
        ready = re.compile(rf"{re.escape(name)} ready")
        proc = Proc(name, argv, {**base_env(self.env), **env}, self.root / f"{name}.log", ready)
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*self.apis, *self.workers]:
            proc.stop()

    def outcomes(self) -> dict[str, list[str]]:
        """Job id -> the outcomes worker logs reported for it (one line per delivery)."""
        out: dict[str, list[str]] = {}
        for worker in self.workers:
            for m in re.finditer(r"job ([0-9a-f]{32}): (\w+)", worker.log()):
                out.setdefault(m.group(1), []).append(m.group(2))
        return out


def submit(client: httpx.Client, api: Api, image: bytes, model: str = "tiny") -> str:
    files = {"file": ("photo.png", image, "image/png")}
    data = {"options": json.dumps({"model": model})}
    r = client.post(f"{api.url}/v1/jobs", files=files, data=data)
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def job(client: httpx.Client, api: Api, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{api.url}/v1/jobs/{job_id}").json()
    return body


def wait_all(
    client: httpx.Client, api: Api, ids: list[str], timeout: float = 180
) -> dict[str, dict[str, Any]]:
    """Every job as it is once all are terminal, or when ``timeout`` passes (callers assert)."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    jobs: dict[str, dict[str, Any]] = {}
    while True:
        for job_id in list(pending):
            jobs[job_id] = job(client, api, job_id)
            if jobs[job_id]["status"] in TERMINAL:
                pending.discard(job_id)
        if not pending or time.monotonic() > deadline:
            return jobs
        time.sleep(0.1)
