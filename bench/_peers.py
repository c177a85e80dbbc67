"""The tools under test, each behind one call: image file in, full-resolution uint8 matte out.

Both are timed over the same span (read the file, decode, predict, upsample), so their
per-image seconds compare like for like.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from cleancut.core.models import ModelSpec
    from cleancut.core.predict import ModelPool

U8 = NDArray[np.uint8]
PeerGraph = Literal["fp32", "shipped"]


@dataclass(frozen=True)
class Timed:
    alpha: U8
    seconds: float
    stages: dict[str, float]  # the tool's own stage split, where it reports one


class Matter(Protocol):
    tool: str  # "cleancut" or the peer's name
    model: str
    label: str  # tool and model, for table headers
    runtime: str  # what actually runs the model, for the report

    def __call__(self, path: Path) -> Timed: ...


class CleancutMatter:
    tool = "cleancut"

    def __init__(self, pool: ModelPool, model: str, label: str) -> None:
        self.model = model
        self.label = label
        self._pool = pool
        self.runtime = pool.get(model).runtime  # loads (and compiles) outside the timed loop

    def __call__(self, path: Path) -> Timed:
        import cleancut

        t0 = time.perf_counter()
        res = cleancut.remove(path, model=self.model, pool=self._pool)
        seconds = time.perf_counter() - t0
        return Timed(res.alpha, seconds, res.timings.as_dict())


class RembgMatter:
    """rembg's ``dis_custom`` session on our ISNet weights, with rembg's own pre- and
    post-processing (LANCZOS to 1024², x/max(x) − 0.5, min-max stretch, LANCZOS upsampling
    of the uint8 mask)."""

    tool = "rembg"

    def __init__(
        self, spec: ModelSpec, weights: Path, workdir: Path, graph: PeerGraph, label: str
    ) -> None:
        self.model = spec.name
        self.label = label
        model_file = weights if graph == "shipped" else _fp32_copy(spec, weights, workdir)
        # rembg looks for custom models inside U2NET_HOME; set it before rembg is imported.
        os.environ["U2NET_HOME"] = str(model_file.parent)
        import onnxruntime as ort
        import rembg

        self._rembg = rembg
        self._session = rembg.new_session("dis_custom", model_path=str(model_file))
        self.slow_solves = 0
        self.runtime = (
            f"rembg {metadata.version('rembg')} / onnxruntime {ort.__version__} "
            f"CPU, {'fp32 pruned copy' if graph == 'fp32' else 'file as shipped'}"
        )

    def __call__(self, path: Path) -> Timed:
        from PIL import Image

        t0 = time.perf_counter()
        with Image.open(path) as img:
            mask = self._rembg.remove(img, session=self._session, only_mask=True)
        alpha = np.asarray(mask.convert("L"), dtype=np.uint8)
        return Timed(alpha, time.perf_counter() - t0, {})

    def matting(self, path: Path) -> Timed:
        """rembg's own edge refinement, ``alpha_matting=True`` with its defaults: a trimap
        from its mask (thresholds 240/10, erosion 10 px), pymatting's closed-form alpha
        matting over the unknown region, then pymatting's foreground estimate. rembg
        ignores ``alpha_matting`` when ``only_mask`` is set, so the matte is read from the
        alpha channel of the cut-out."""
        import contextlib
        import io

        from PIL import Image

        chatter = io.StringIO()
        t0 = time.perf_counter()
        with Image.open(path) as img, contextlib.redirect_stdout(chatter):
            cut = self._rembg.remove(img, session=self._session, alpha_matting=True)
        seconds = time.perf_counter() - t0
        # pymatting prints this when its preconditioner fails and the solve crawls.
        self.slow_solves += chatter.getvalue().count("PERFORMANCE WARNING")
        alpha = np.asarray(cut.convert("RGBA"), dtype=np.uint8)[..., 3].copy()
        return Timed(alpha, seconds, {})


def _fp32_copy(spec: ModelSpec, weights: Path, workdir: Path) -> Path:
    """The same weights widened to fp32 with the unused side outputs removed: the fastest
    file for onnxruntime, as our own onnxruntime runtime uses (see cleancut.core.graph).
    Giving rembg this file keeps the latency comparison about pipelines, not file formats."""
    from cleancut.core import graph

    payload, _, _ = graph.prepare(weights, spec.input_name, spec.output_name)
    out = workdir / f"{spec.name}.fp32.onnx"
    out.write_bytes(payload)
    return out


def versions() -> dict[str, str]:
    """Versions of the packages whose behaviour the numbers depend on."""
    out: dict[str, str] = {}
    for name in (
        "cleancut",
        "rembg",
        "pymatting",
        "onnxruntime",
        "openvino",
        "pysodmetrics",
        "numpy",
        "opencv-python-headless",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
