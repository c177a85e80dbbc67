"""A real ``cleancut serve`` process on a free loopback port (tests and bench/server_load.py)."""

from __future__ import annotations

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

from cleancut.core.weights import default_cache_dir

_URL = re.compile(r"serving on (http://[^\s]+)")
TERMINAL = {"succeeded", "failed", "canceled"}
SERVE = [sys.executable, "-m", "cleancut.cli", "serve", "--port", "0", "--log-level", "info"]


def real_cache_dir() -> str:
    return os.environ.get("CLEANCUT_CACHE_DIR") or str(default_cache_dir())


@dataclass
class ServerProcess:
    """Start, stop, SIGKILL and restart one server over the same data folder."""

    data_dir: Path
    settings: Mapping[str, str] = field(default_factory=dict)  # CLEANCUT_SERVER__* minus prefix
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    starts: int = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCUT_SERVER__")}
        env["CLEANCUT_CACHE_DIR"] = real_cache_dir()
        env["CLEANCUT_SERVER__RATE_LIMIT__PER_MINUTE"] = "0"
        env.update({f"CLEANCUT_SERVER__{k.upper()}": v for k, v in self.settings.items()})
        return env

    def start(self, timeout: float = 180) -> str:
        self.starts += 1
        log_path = self.log_path or self.data_dir.parent / "server.log"
        self.log_path = log_path
        log = log_path.open("ab")
        log.write(f"---- start {self.starts}\n".encode())
        log.flush()
        offset = log_path.stat().st_size
        self.proc = subprocess.Popen(
            [*SERVE, "--data-dir", str(self.data_dir)],
            stdout=log,
            stderr=log,
            env=self.env(),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log_path.read_bytes()[offset:].decode(errors="replace")
            if m := _URL.search(text):
                self.url = m.group(1)
                return self.url
            if self.proc.poll() is not None:
                raise RuntimeError(f"cleancut serve exited {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise TimeoutError("cleancut serve did not announce its URL")

    def wait_ready(self, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=5)
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready: {self.log()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 60) -> bool:
        """SIGTERM (graceful: the lifespan stops the service) and wait; True when the process
        shut down cleanly (uvicorn re-raises the SIGTERM it handled, so -15 is clean too)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode in (0, -signal.SIGTERM)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    # -- client helpers ---------------------------------------------------------------------

    def submit(self, client: httpx.Client, image: bytes, **headers: str) -> httpx.Response:
        files = {"file": ("photo.jpg", image, "image/jpeg")}
        return client.post(f"{self.url}/v1/jobs", files=files, headers=headers)

    def job(self, client: httpx.Client, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = client.get(f"{self.url}/v1/jobs/{job_id}").json()
        return body

    def wait_all(
        self, client: httpx.Client, ids: list[str], timeout: float = 300
    ) -> dict[str, dict[str, Any]]:
        """Poll until every job is terminal (or the bound passes: the caller asserts)."""
        deadline = time.monotonic() + timeout
        jobs: dict[str, dict[str, Any]] = {}
        while True:
            jobs = {i: self.job(client, i) for i in ids}
            if all(j["status"] in TERMINAL for j in jobs.values()):
                return jobs
            if time.monotonic() > deadline:
                return jobs
            time.sleep(0.2)
