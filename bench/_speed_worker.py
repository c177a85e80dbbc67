"""One tool configuration of ``bench/speed.py``, in its own process so its peak RSS is its own.

    python bench/_speed_worker.py TOOL CONFIG_JSON

It loads the tool, then answers requests read from stdin, one JSON object a line
(``{"input": PATH, "format": "png", "lossless": true, "save": PATH|null}``), with one line
``@@speed {"seconds": ..., "stages": {...}, "bytes": ...}`` each. The marker keeps stray
library output on stdout from being read as an answer. Each request is one end-to-end run:
read the file, decode, predict, build the full-resolution matte, encode to bytes in memory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "@@speed "
Stages = dict[str, float]


class TimedSegmenter:
    """Stands in for a ``Segmenter`` in ``pipeline.run`` and splits its ``predict`` into
    preprocess (resize + normalise), inference (the runtime alone) and postprocess."""

    def __init__(self, segmenter: Any) -> None:
        self._seg = segmenter
        self.spec = segmenter.spec
        self.stages: Stages = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._seg, name)

    @property
    def runtime(self) -> str:
        return str(self._seg.runtime)

    def predict(self, rgb: Any) -> Any:
        t0 = time.perf_counter()
        x = self._seg.preprocess(rgb)
        t1 = time.perf_counter()
        raw = self._seg.session.run(x)
        t2 = time.perf_counter()
        prob = self._seg.postprocess(raw)
        t3 = time.perf_counter()
        self.stages = {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2}
        return prob


class Cleancut:
    """cleancut's own pipeline (``pipeline.run`` then ``Result.encode``), as ``remove`` runs it."""

    def __init__(self, config: dict[str, Any]) -> None:
        from dataclasses import replace

        from cleancut.config import Settings
        from cleancut.core.predict import ModelPool
        from cleancut.core.types import Options, Refine

        settings = Settings()
        runtime = replace(
            settings.runtime_config(),
            runtime=config.get("runtime", "auto"),
            precision=config.get("precision", "auto"),
        )
        pool = ModelPool(settings.registry(), settings.weights(), runtime)
        self.segmenter = TimedSegmenter(pool.get(config.get("model", "isnet-general")))
        refine = Refine() if config.get("refine") is None else Refine(level=config["refine"])
        self.options = Options(refine=refine)
        if config.get("png_writer") == "pillow":
            _force_pillow_png()
        self.describe = f"{self.segmenter.runtime}, refine level {refine.level}"

    def __call__(self, path: Path, fmt: str, lossless: bool) -> tuple[bytes, Stages]:
        from cleancut.core import pipeline

        t0 = time.perf_counter()
        data = path.read_bytes()
        read = time.perf_counter() - t0
        result = pipeline.run(data, self.options, self.segmenter)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        out = result.encode(format=fmt, lossless=lossless)
        t2 = time.perf_counter()
        seg = self.segmenter.stages
        stages = {
            "decode": read + result.timings.decode,
            "preprocess": seg["preprocess"],
            "inference": seg["inference"],
            # the model's output to the final full-resolution matte: postprocess,
            # upsampling and edge refinement
            "matte": seg["postprocess"] + result.timings.refine,
            "encode": t2 - t1,
        }
        return out, stages


def _force_pillow_png() -> None:
    """Route every PNG through Pillow's encoder (the writer before the fast one)."""
    from functools import partial

    from cleancut.core import io

    io.encode = partial(io.encode, png_writer="pillow")  # type: ignore[assignment]


class Rembg:
    """rembg's ``dis_custom`` session on our weights (the fp32 pruned copy, as in
    bench/quality.py), its own ``remove`` and Pillow's default encoder settings."""

    def __init__(self, config: dict[str, Any]) -> None:
        from importlib import metadata

        from cleancut.config import Settings

        settings = Settings()
        spec = settings.registry().get(config.get("model", "isnet-general"))
        weights = settings.weights().ensure(spec)
        workdir = Path(config["workdir"])
        model_file = workdir / f"{spec.name}.fp32.onnx"
        if not model_file.exists():
            from cleancut.core import graph

            payload, _, _ = graph.prepare(weights, spec.input_name, spec.output_name)
            model_file.write_bytes(payload)
        os.environ["U2NET_HOME"] = str(model_file.parent)  # rembg checks the model lives there
        import rembg

        self._rembg = rembg
        self._session = rembg.new_session("dis_custom", model_path=str(model_file))
        self._stages: Stages = {}
        self._wrap_session()
        self.describe = f"rembg {metadata.version('rembg')}, onnxruntime CPU, fp32 pruned graph"

    def _wrap_session(self) -> None:
        session, inner = self._session, self._session.inner_session
        normalize, run = session.normalize, inner.run

        def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._stages[key] = self._stages.get(key, 0.0) + time.perf_counter() - t0

            return call

        session.normalize = timed("preprocess", normalize)
        inner.run = timed("inference", run)

    def __call__(self, path: Path, fmt: str, lossless: bool) -> tuple[bytes, Stages]:
        import io

        from PIL import Image

        self._stages = {}
        t0 = time.perf_counter()
        img = Image.open(path)
        img.load()
        t1 = time.perf_counter()
        cutout = self._rembg.remove(img, session=self._session)
        t2 = time.perf_counter()
        buf = io.BytesIO()
        # Pillow's defaults for the format, as a rembg user saving the returned image gets
        # (rembg's own bytes-in, bytes-out path is the same PNG save).
        cutout.save(buf, {"png": "PNG", "webp": "WEBP", "avif": "AVIF"}[fmt])
        t3 = time.perf_counter()
        pre, inf = self._stages.get("preprocess", 0.0), self._stages.get("inference", 0.0)
        stages = {
            "decode": t1 - t0,
            "preprocess": pre,
            "inference": inf,
            # min-max stretch, LANCZOS upsampling of the mask, cut-out composition
            "matte": (t2 - t1) - pre - inf,
            "encode": t3 - t2,
        }
        return buf.getvalue(), stages


TOOLS: dict[str, Callable[[dict[str, Any]], Any]] = {"cleancut": Cleancut, "rembg": Rembg}


def main() -> int:
    tool_name, config = sys.argv[1], json.loads(sys.argv[2])
    tool = TOOLS[tool_name](config)
    print(MARKER + json.dumps({"ready": True, "describe": tool.describe}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        t0 = time.perf_counter()
        out, stages = tool(Path(req["input"]), req["format"], req.get("lossless", True))
        seconds = time.perf_counter() - t0
        if req.get("save"):
            Path(req["save"]).write_bytes(out)
        answer = {"seconds": seconds, "stages": stages, "bytes": len(out)}
        print(MARKER + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
