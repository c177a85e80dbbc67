"""Shared pieces of the job tests: a tiny-model pool, service factories, test images, a
loopback HTTP(S) server, and polling with a deadline (never fixed sleeps)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cleancut.core.models import ModelRegistry, ModelSpec
from cleancut.core.predict import ModelPool, Segmenter
from cleancut.core.runtimes import RuntimeConfig
from cleancut.core.types import F32, Options
from cleancut.core.weights import WeightsCache
from cleancut.jobs.local import LocalConfig, build_local_service
from cleancut.jobs.service import JobService
from cleancut.net import NetPolicy
from tests import loopback, tinymodels
from tests.loopback import LoopbackHandler, make_ca, server_tls
from tests.loopback import serve as serve
from tests.polling import wait_for as wait_for

TINY = Options(model="tiny")


def png(array: np.ndarray | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(tinymodels.square_image() if array is None else array).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def image() -> bytes:
    return png()


@pytest.fixture
def pool(tiny_spec: ModelSpec, tmp_path: Path) -> ModelPool:
    """The tiny brightness model on onnxruntime (``tiny_pool`` also runs OpenVINO)."""
    return ModelPool(
        ModelRegistry([tiny_spec]),
        WeightsCache(tmp_path / "cache"),
        RuntimeConfig(runtime="onnxruntime"),
    )


class CountingPool:
    """Wraps a pool: counts model look-ups, and can make inference block until released."""

    def __init__(self, inner: ModelPool) -> None:
        self.inner = inner
        self.gets = 0
        self.runs = 0
        self.block = False
        #: called in the job's thread at each inference (what the job sees there)
        self.on_run: Callable[[], None] | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def get(self, name: str) -> Segmenter:
        self.gets += 1
        seg = self.inner.get(name)
        return replace(seg, session=_Session(self, seg.session))

    def loaded(self) -> list[str]:
        return self.inner.loaded()


@dataclass
class _Session:
    owner: CountingPool
    inner: Any

    @property
    def runtime(self) -> str:
        return str(self.inner.runtime)

    def run(self, batch: F32) -> F32:
        self.owner.runs += 1
        if self.owner.on_run is not None:
            self.owner.on_run()
        if self.owner.block:
            self.owner.entered.set()
            assert self.owner.release.wait(30), "the test never released inference"
        out: F32 = self.inner.run(batch)
        return out


@pytest.fixture
def counting(pool: ModelPool) -> CountingPool:
    return CountingPool(pool)


@dataclass
class Factory:
    tmp_path: Path
    services: list[JobService] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def __call__(
        self,
        segmenters: Any,
        *,
        policy: NetPolicy | None = None,
        start: bool = True,
        data: str = "data",
        clock: Callable[[], float] = time.time,
        **config: Any,
    ) -> JobService:
        cfg = LocalConfig(self.tmp_path / data, **{"cleanup_interval": 3600.0, **config})
        svc = build_local_service(
            cfg, segmenters, policy or NetPolicy(), self.logs.append, clock=clock
        )
        self.services.append(svc)
        if start:
            svc.start()
        return svc


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Factory]:
    factory = Factory(tmp_path)
    yield factory
    for svc in factory.services:
        svc.stop(10)


# --------------------------------------------------------------------------- loopback server


class Handler(LoopbackHandler):
    def reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer(loopback.LoopbackServer):
    handler = Handler

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    yield from serve(LoopbackServer())


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_server(tls_ca: tuple[Any, Path]) -> Iterator[LoopbackServer]:
    yield from serve(LoopbackServer(tls=server_tls(tls_ca[0])))
