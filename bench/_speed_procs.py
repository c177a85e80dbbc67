"""The worker processes of ``bench/speed.py``: one per tool configuration, so each one's peak
RSS is its own (``VmHWM`` from /proc before it exits), and the IMG.LY install they need."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
MARKER = "@@speed "
IMGLY_VERSION = "1.4.5"
#: As ../shared/PEERS.md says: sharp pinned so that its prebuilt binary comes from npm,
#: onnxruntime-node told not to fetch CUDA from GitHub.
IMGLY_PACKAGE = {
    "name": "cleancut-bench-imgly",
    "private": True,
    "dependencies": {"@imgly/background-removal-node": IMGLY_VERSION},
    "overrides": {"sharp": "0.33.5"},
}


class WorkerFailed(RuntimeError):
    pass


class Worker:
    """A running tool: requests in on stdin, ``@@speed`` answers out on stdout."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.label = label
        self.log = log
        self._stderr: IO[str] = log.open("w")
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self.describe = str(self._answer().get("describe", ""))
        self.peak_rss_mb: float | None = None

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise self._failed("exited") from None
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(MARKER):
                answer: dict[str, Any] = json.loads(line[len(MARKER) :])
                return answer
        raise self._failed("ended without answering")

    def _failed(self, what: str) -> WorkerFailed:
        self._stderr.flush()
        tail = self.log.read_text(errors="replace")[-2000:]
        return WorkerFailed(f"{self.label} {what}; last of its stderr:\n{tail}")

    def close(self) -> float:
        """End the worker and return its peak RSS in MiB.

        The peak is the child's own ``VmHWM``, read while it idles before exiting. (The
        ``ru_maxrss`` that ``wait4`` reports is no good here: a child started with vfork
        inherits the parent's high-water mark at exec, so small children read as the
        parent's size.)"""
        peak = _vm_hwm_mib(self._proc.pid)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait()
        self._stderr.close()
        self.peak_rss_mb = peak
        return peak


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise WorkerFailed(f"no VmHWM for process {pid}")


def python_worker(label: str, tool: str, config: dict[str, Any], logdir: Path) -> Worker:
    cmd = [sys.executable, str(HERE / "_speed_worker.py"), tool, json.dumps(config)]
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return Worker(label, cmd, env, logdir / f"{_slug(label)}.log")


def imgly_worker(label: str, install_dir: Path, logdir: Path) -> Worker:
    node = shutil.which("node")
    if node is None:
        raise WorkerFailed("IMG.LY needs node on PATH")
    env = dict(os.environ, IMGLY_DIR=str(install_dir))
    return Worker(label, [node, str(HERE / "_speed_imgly.mjs")], env, logdir / "imgly.log")


def ensure_imgly(install_dir: Path) -> Path:
    """Install ``@imgly/background-removal-node`` (with its dependencies and the weights it
    carries) into ``install_dir`` from npm, once."""
    marker = install_dir / "node_modules" / "@imgly" / "background-removal-node" / "package.json"
    if marker.is_file() and json.loads(marker.read_text()).get("version") == IMGLY_VERSION:
        return install_dir
    npm = shutil.which("npm")
    if npm is None:
        raise WorkerFailed("installing IMG.LY needs npm on PATH")
    install_dir.mkdir(parents=True, exist_ok=True)
    (install_dir / "package.json").write_text(json.dumps(IMGLY_PACKAGE, indent=2))
    print(f"installing @imgly/background-removal-node {IMGLY_VERSION} into {install_dir}")
    subprocess.run(
        [npm, "install", "--onnxruntime-node-install-cuda=skip", "--no-audit", "--no-fund"],
        cwd=install_dir,
        check=True,
        env=dict(os.environ, ONNXRUNTIME_NODE_INSTALL_CUDA="skip"),
    )
    return install_dir


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "not installed"
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-")
