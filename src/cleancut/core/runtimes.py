"""Inference runtimes behind the Session Protocol, chosen by one table.

A requested runtime or device that is not available raises RuntimeUnavailable: a silent
fallback from GPU to CPU is the kind of surprise users file bugs about.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cleancut.core import graph
from cleancut.core.models import ModelSpec
from cleancut.core.types import F32, Session
from cleancut.errors import ModelError, RuntimeUnavailable

RuntimeName = Literal["auto", "openvino", "onnxruntime"]
Device = Literal["cpu", "gpu", "cuda", "tensorrt"]
#: ``auto``: 8-bit where the model has an int8 recipe and runs on OpenVINO, else ``float``.
#: ``float``: the runtime's fastest float type (OpenVINO picks bf16 on CPUs that have it).
Precision = Literal["auto", "int8", "float", "f32"]
Resolved = Literal["int8", "float", "f32"]
#: ``latency``: one inference at a time on every thread. ``throughput``: ``requests``
#: inferences side by side, each on its share of the threads (OpenVINO streams), for a
#: process that runs that many jobs at once.
Mode = Literal["latency", "throughput"]


@dataclass(frozen=True)
class RuntimeConfig:
    runtime: RuntimeName = "auto"
    device: Device = "cpu"
    #: Raw-output difference from fp32 (docs/benchmarks.md): bf16 about 0.0006 mean
    #: absolute, the built-in ISNet's 8-bit graph 0.004-0.007, with the same quality
    #: against ground truth over the eval sets once refined.
    precision: Precision = "auto"
    threads: int | None = None  # None: every core the process may use
    #: parallel inference requests (OpenVINO); more than one helps only under concurrency.
    requests: int = 1
    mode: Mode = "latency"
    #: OpenVINO compiled-model cache, which makes a restart's compile much faster.
    cache_dir: Path | None = None


#: OpenVINO's names for the devices it runs on.
_OV_DEVICES: Mapping[str, str] = {"cpu": "CPU", "gpu": "GPU"}


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OpenVINOSession:
    def __init__(self, spec: ModelSpec, path: Path, cfg: RuntimeConfig) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise RuntimeUnavailable(
                "the OpenVINO runtime is not installed", hint="pip install openvino"
            ) from exc
        device = _OV_DEVICES.get(cfg.device)
        core = ov.Core()
        if device is None or device not in core.available_devices:
            raise RuntimeUnavailable(
                f"OpenVINO cannot run on device {cfg.device!r} here "
                f"(available: {', '.join(core.available_devices)})",
                hint="use runtime 'onnxruntime' for CUDA or TensorRT",
            )
        if cfg.cache_dir is not None:
            cfg.cache_dir.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cfg.cache_dir)})
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for bad graphs
            raise ModelError(f"OpenVINO cannot read {path}: {exc}") from exc
        inputs = [n for p in model.inputs for n in sorted(p.get_names())[:1]]
        outputs = {n: o for o in model.outputs for n in o.get_names()}
        self.input_name = spec.input_name or inputs[0]
        self.output_name = spec.output_name or next(iter(model.outputs[0].get_names()))
        if self.input_name not in {n for p in model.inputs for n in p.get_names()}:
            raise ModelError(f"the model has no input {self.input_name!r}; it has {inputs}")
        if self.output_name not in outputs:
            raise ModelError(
                f"the model has no output {self.output_name!r}; it has {sorted(outputs)}"
            )
        # Side outputs we never read still cost their upsampling work: drop them.
        model = ov.Model([outputs[self.output_name]], model.get_parameters(), spec.name)
        threads = cfg.threads or _default_threads()
        streams = min(max(1, cfg.requests), threads) if cfg.mode == "throughput" else 1
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads}
        if streams > 1:
            # Two single-threaded inferences side by side beside two jobs' other work kept
            # both cores busy; one two-threaded inference at a time stalled whenever one of
            # its threads shared a core with the other job (docs/benchmarks.md, "Server").
            config.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=streams)
        else:
            config["PERFORMANCE_HINT"] = "LATENCY"
        if cfg.precision == "f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        self._compiled = core.compile_model(model, device, config)
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        floats = getattr(hint, "to_string", hint.__str__)()
        # An 8-bit graph runs its quantised layers in int8 and the rest in ``floats``.
        precision = f"int8+{floats}" if cfg.precision == "int8" else floats
        self._runtime = f"openvino/{device}/{precision}" + (
            f" ({streams} streams)" if streams > 1 else ""
        )
        self._requests: queue.Queue[Any] = queue.Queue()
        for _ in range(max(1, cfg.requests)):
            self._requests.put(self._compiled.create_infer_request())

    @property
    def runtime(self) -> str:
        return self._runtime

    def run(self, batch: F32) -> F32:
        # An infer request is not thread-safe; a pool of them bounds concurrency instead.
        request = self._requests.get()
        try:
            result = request.infer({0: batch})
            out = np.array(result[self._compiled.outputs[0]], dtype=np.float32, copy=True)
        finally:
            self._requests.put(request)
        return out


_ORT_PROVIDERS: Mapping[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntimeSession:
    def __init__(self, spec: ModelSpec, path: Path, cfg: RuntimeConfig) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeUnavailable(
                "onnxruntime is not installed", hint="pip install onnxruntime"
            ) from exc
        if cfg.precision == "int8":
            raise RuntimeUnavailable(
                "8-bit inference runs on OpenVINO only",
                hint="use runtime 'openvino', or precision 'float' with onnxruntime",
            )
        provider = _ORT_PROVIDERS.get(cfg.device)
        available = ort.get_available_providers()
        if provider is None or provider not in available:
            raise RuntimeUnavailable(
                f"onnxruntime has no provider for device {cfg.device!r} here "
                f"(available: {', '.join(available)})",
                hint="install onnxruntime-gpu for CUDA/TensorRT, or use device 'cpu'",
            )
        payload, self.input_name, self.output_name = graph.prepare(
            path, spec.input_name, spec.output_name
        )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.threads or _default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(payload, opts, providers=[provider])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc
        self._runtime = f"onnxruntime/{provider.removesuffix('ExecutionProvider')}/f32"

    @property
    def runtime(self) -> str:
        return self._runtime

    def run(self, batch: F32) -> F32:
        (out,) = self._session.run([self.output_name], {self.input_name: batch})
        return np.asarray(out, dtype=np.float32)


SessionFactory = Callable[[ModelSpec, Path, RuntimeConfig], Session]

RUNTIMES: Mapping[str, SessionFactory] = {
    "openvino": OpenVINOSession,
    "onnxruntime": OnnxRuntimeSession,
}


def resolve_runtime(cfg: RuntimeConfig) -> str:
    """``auto`` is OpenVINO on CPU/GPU (measured fastest here) and onnxruntime for CUDA."""
    if cfg.runtime != "auto":
        return cfg.runtime
    if cfg.device in ("cuda", "tensorrt"):
        return "onnxruntime"
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "onnxruntime"
    return "openvino"


def int8_capable(device: Device) -> bool:
    """Whether OpenVINO runs 8-bit kernels on ``device`` here (x86 CPUs from AVX2 on, Intel
    GPUs); elsewhere a quantised graph would run emulated, slower than float."""
    try:
        import openvino as ov
    except ImportError:
        return False
    name = _OV_DEVICES.get(device)
    core = ov.Core()
    if name is None or name not in core.available_devices:
        return False
    return "INT8" in core.get_property(name, "OPTIMIZATION_CAPABILITIES")


def resolve_precision(spec: ModelSpec, cfg: RuntimeConfig) -> Resolved:
    """``auto`` is int8 where the spec has a recipe and OpenVINO runs 8-bit kernels on the
    device; asking for int8 where it cannot run is an error, not a quiet float run."""
    openvino = resolve_runtime(cfg) == "openvino"
    match cfg.precision:
        case "auto":
            usable = spec.int8 is not None and openvino and int8_capable(cfg.device)
            return "int8" if usable else "float"
        case "int8" if not openvino:
            raise RuntimeUnavailable(
                "8-bit inference runs on OpenVINO only",
                hint="use runtime 'openvino' (CPU or GPU), or precision 'float'",
            )
        case "int8" if spec.int8 is None:
            raise RuntimeUnavailable(
                f"model {spec.name!r} has no 8-bit recipe",
                hint="use precision 'float', or give the model an \"int8\" entry (README)",
            )
        case "int8" if not int8_capable(cfg.device):
            raise RuntimeUnavailable(
                f"OpenVINO has no 8-bit kernels for device {cfg.device!r} here",
                hint="use precision 'float'",
            )
        case "int8" | "float" | "f32":
            return cfg.precision
    raise RuntimeUnavailable(f"unknown precision {cfg.precision!r}")


def open_session(spec: ModelSpec, path: Path, cfg: RuntimeConfig) -> Session:
    name = resolve_runtime(cfg)
    try:
        factory = RUNTIMES[name]
    except KeyError:
        raise RuntimeUnavailable(
            f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}"
        ) from None
    return factory(spec, path, cfg)
