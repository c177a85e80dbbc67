"""From an RGB image to the model's probability map, and the pool that loads each model once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from cleancut.core import quantize
from cleancut.core.blob import to_blob
from cleancut.core.models import ModelRegistry, ModelSpec
from cleancut.core.runtimes import RuntimeConfig, open_session, resolve_precision
from cleancut.core.types import F32, U8, Session
from cleancut.core.weights import WeightsCache
from cleancut.errors import ModelError


@dataclass(frozen=True)
class Segmenter:
    """A model spec bound to a live session: the thing that turns pixels into a matte."""

    spec: ModelSpec
    session: Session

    @property
    def runtime(self) -> str:
        return self.session.runtime

    def preprocess(self, rgb: U8) -> F32:
        return to_blob(self.spec, rgb)

    def postprocess(self, raw: F32) -> F32:
        prob = np.asarray(raw, dtype=np.float32)
        while prob.ndim > 2 and prob.shape[0] == 1:
            prob = prob[0]
        if prob.ndim != 2:
            raise ModelError(
                f"model {self.spec.name!r} returned shape {raw.shape}; expected N×1×H×W"
            )
        match self.spec.activation:
            case "sigmoid":
                prob = (1.0 / (1.0 + np.exp(-prob))).astype(np.float32)
            case "minmax":
                lo, hi = float(prob.min()), float(prob.max())
                prob = ((prob - lo) / (hi - lo) if hi > lo else np.zeros_like(prob)).astype(
                    np.float32
                )
            case "none":
                pass
        return np.clip(prob, 0.0, 1.0).astype(np.float32, copy=False)

    def predict(self, rgb: U8) -> F32:
        """Probability of foreground at the model's resolution, in [0, 1]."""
        return self.postprocess(self.session.run(self.preprocess(rgb)))


LogFn = Callable[[str], None]


def load_session(
    spec: ModelSpec, weights: WeightsCache, cfg: RuntimeConfig, log: LogFn | None = None
) -> Session:
    """A session for ``spec`` at the precision ``cfg`` resolves to; an 8-bit run reads the
    int8 graph, built from the cached weights on first use."""
    precision = resolve_precision(spec, cfg)
    path = quantize.ensure(weights, spec, log) if precision == "int8" else weights.ensure(spec)
    return open_session(spec, path, replace(cfg, precision=precision))


@dataclass
class ModelPool:
    """Loads each (model, runtime) once per process and hands out the same Segmenter.

    Loading is locked per model, so concurrent first requests build one session, not many.
    """

    registry: ModelRegistry
    weights: WeightsCache
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    log: LogFn | None = None
    _loaded: dict[str, Segmenter] = field(default_factory=dict, init=False, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def get(self, name: str) -> Segmenter:
        if (ready := self._loaded.get(name)) is not None:
            return ready
        spec = self.registry.get(name)
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if (ready := self._loaded.get(name)) is not None:
                return ready
            session = load_session(spec, self.weights, self.runtime, self.log)
            if self.log is not None:
                self.log(f"loaded model {name!r} on {session.runtime}")
            segmenter = Segmenter(spec, session)
            self._loaded[name] = segmenter
            return segmenter

    def loaded(self) -> list[str]:
        return list(self._loaded)
