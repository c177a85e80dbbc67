"""8-bit graphs, built once per machine from the float weights and a few public-domain photos.

On CPUs with 8-bit dot products (AVX-512 VNNI, AMX, AVX-VNNI) an int8 convolution does
twice the work of a bf16 one per instruction; ISNet with int8 convolutions ran in about
half the time of bf16 on this project's 2-core machine (docs/benchmarks.md, "8-bit
inference"). The graph is built with NNCF's post-training quantisation: it runs the fp32
graph over the calibration photos (``cleancut/data/calibration``, public domain or CC0;
its README names each source), each seen whole, mirrored and centre-cropped, and records
the range of every activation it quantises. The spec's ``Int8Recipe`` says which layers
stay in float.

The result is an OpenVINO IR (``.xml`` + ``.bin``) in the weights cache. Its file name
carries a digest of everything that decides its contents (weights, recipe, photos and this
module's ``PROCEDURE``), so a change to any of them builds a new graph instead of reusing
a stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cleancut.core import graph
from cleancut.core.blob import to_blob
from cleancut.core.models import ModelSpec
from cleancut.core.types import F32, U8
from cleancut.core.weights import WeightsCache, sha256_file
from cleancut.errors import ModelError, RuntimeUnavailable

LogFn = Callable[[str], None]

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "data" / "calibration"
#: Bump when the way a graph is built changes, so that cached graphs are rebuilt.
PROCEDURE = 2


def calibration_photos(folder: Path = CALIBRATION_DIR) -> list[tuple[str, bytes]]:
    photos = sorted(p for p in folder.glob("*.jpg") if p.is_file())
    if not photos:
        raise ModelError(f"no calibration photos in {folder}; the installation is incomplete")
    return [(p.name, p.read_bytes()) for p in photos]


def _views(rgb: U8) -> Iterator[U8]:
    """The photo whole, mirrored and its centre two-thirds: the model sees subjects at more
    than one scale and on both sides, from only a handful of licence-free photos."""
    h, w = rgb.shape[:2]
    yield rgb
    yield np.ascontiguousarray(rgb[:, ::-1])
    yield np.ascontiguousarray(rgb[h // 6 : h - h // 6, w // 6 : w - w // 6])


def calibration_inputs(spec: ModelSpec, folder: Path = CALIBRATION_DIR) -> list[F32]:
    inputs: list[F32] = []
    for name, data in calibration_photos(folder):
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ModelError(f"calibration photo {name} cannot be decoded")
        rgb: U8 = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)
        inputs.extend(to_blob(spec, view) for view in _views(rgb))
    return inputs


def digest(spec: ModelSpec, weights_sha256: str, folder: Path = CALIBRATION_DIR) -> str:
    """What decides the 8-bit graph's contents, hashed."""
    if spec.int8 is None:
        raise ModelError(f"model {spec.name!r} has no 8-bit recipe")
    h = hashlib.sha256()
    facts = {
        "procedure": PROCEDURE,
        "weights": weights_sha256,
        "recipe": {"keep_float": list(spec.int8.keep_float), "preset": spec.int8.preset},
        "input": [spec.input_name, spec.output_name, list(spec.input_size)],
        "normalise": [list(spec.mean), list(spec.std)],
    }
    h.update(json.dumps(facts, sort_keys=True).encode())
    for name, data in calibration_photos(folder):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def int8_path(weights: WeightsCache, spec: ModelSpec, source: Path) -> Path:
    """Where the 8-bit graph of ``spec``, built from the weights file ``source``, lives."""
    sha = spec.sha256 or sha256_file(source)
    return weights.models_dir / f"{spec.name}.int8-{digest(spec, sha)[:16]}.xml"


def _built(path: Path) -> bool:
    return path.is_file() and path.with_suffix(".bin").is_file()


def cached(weights: WeightsCache, spec: ModelSpec) -> Path | None:
    """The 8-bit graph if it is already built for the current weights and recipe."""
    source = weights.path_for(spec)
    if spec.int8 is None or not source.is_file():
        return None
    path = int8_path(weights, spec, source)
    return path if _built(path) else None


def ensure(
    weights: WeightsCache, spec: ModelSpec, log: LogFn | None = None, *, rebuild: bool = False
) -> Path:
    """The 8-bit graph of ``spec``, built first if this machine has none yet (or, with
    ``rebuild``, built again)."""
    say = log or (lambda _msg: None)
    source = weights.ensure(spec)
    dest = int8_path(weights, spec, source)
    if _built(dest) and not rebuild:
        return dest
    with weights.lock(f"{spec.name}.int8"):
        if _built(dest) and not rebuild:
            return dest  # another process built it while we waited
        say(f"building the 8-bit graph of {spec.name!r} (once per machine, about a minute) …")
        t0 = time.perf_counter()
        build(spec, source, dest)
        for stale in weights.models_dir.glob(f"{spec.name}.int8-*"):
            if stale.stem != dest.stem:
                with contextlib.suppress(OSError):
                    stale.unlink()
        say(f"{spec.name}: 8-bit graph built in {time.perf_counter() - t0:.0f} s → {dest}")
    return dest


def build(spec: ModelSpec, source: Path, dest: Path) -> None:
    """Quantise ``source`` (an ONNX file) by ``spec.int8`` into the IR ``dest`` (+ ``.bin``).

    Written into a temporary folder beside ``dest`` and renamed into place, the weights
    file first: a reader that finds the ``.xml`` always finds the whole graph.
    """
    if spec.int8 is None:
        raise ModelError(f"model {spec.name!r} has no 8-bit recipe")
    # NNCF reports usage to Google Analytics unless this is set; this project never sends
    # anything anywhere.
    os.environ["NNCF_CI"] = "1"
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise RuntimeUnavailable(
            "8-bit inference needs NNCF and OpenVINO to build its graph",
            hint="pip install nncf openvino, or set CLEANCUT_INFERENCE__PRECISION=float",
        ) from exc
    payload, _, _ = graph.prepare(source, spec.input_name, spec.output_name)
    model = ov.Core().read_model(payload)
    inputs = calibration_inputs(spec)
    recipe = spec.int8
    preset = {
        "mixed": nncf.QuantizationPreset.MIXED,
        "performance": nncf.QuantizationPreset.PERFORMANCE,
    }[recipe.preset]
    scope = nncf.IgnoredScope(patterns=list(recipe.keep_float)) if recipe.keep_float else None
    try:
        with _quiet(nncf):
            quantised = nncf.quantize(
                model,
                nncf.Dataset(inputs),
                preset=preset,
                subset_size=len(inputs),
                fast_bias_correction=True,
                ignored_scope=scope,
            )
    except Exception as exc:  # NNCF raises its own errors (a pattern matching nothing ...)
        raise ModelError(f"cannot build the 8-bit graph of {spec.name!r}: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.stem}-", dir=dest.parent) as tmp:
        part = Path(tmp) / dest.name
        # The float layers keep the weights' own precision (fp16 weights stay exact).
        ov.save_model(quantised, str(part), compress_to_fp16=False)
        os.replace(part.with_suffix(".bin"), dest.with_suffix(".bin"))
        os.replace(part, dest)


@contextlib.contextmanager
def _quiet(nncf: Any) -> Iterator[None]:
    """NNCF logs each step and draws progress bars through rich's global console; the
    caller reports instead. Only rich's output is silenced: redirecting stdout would also
    swallow what other threads of a server print meanwhile."""
    import rich

    nncf.set_log_level(logging.ERROR)
    console = rich.get_console()
    was = console.quiet
    console.quiet = True
    try:
        yield
    finally:
        console.quiet = was
