"""Which inference runtime should be the default? Time each runtime/precision on the same
inputs in one run and compare its masks with the fp32 reference (onnxruntime on the
fp32-widened graph). A float runtime must stay within 0.005 mean absolute difference; the
8-bit default differs more on the raw output (about 0.007 here) and is judged instead by
``bench/quality.py --precision int8,float`` over every eval photo (docs/benchmarks.md).

    python bench/runtimes.py [--photos 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model
from cleancut.config import Settings
from cleancut.core import io, quantize
from cleancut.core.predict import Segmenter, load_session
from cleancut.core.runtimes import RuntimeConfig, resolve_precision

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"

CONFIGS: dict[str, tuple[str, RuntimeConfig]] = {
    "onnxruntime fp32 graph (reference)": ("isnet-general", RuntimeConfig(runtime="onnxruntime")),
    "openvino int8 (default)": ("isnet-general", RuntimeConfig(runtime="openvino")),
    "openvino float (bf16 where the CPU has it)": (
        "isnet-general",
        RuntimeConfig(runtime="openvino", precision="float"),
    ),
    "openvino f32": ("isnet-general", RuntimeConfig(runtime="openvino", precision="f32")),
    "onnxruntime q8 model": ("isnet-general-q8", RuntimeConfig(runtime="onnxruntime")),
    "openvino q8 model": ("isnet-general-q8", RuntimeConfig(runtime="openvino")),
}


def _photos(count: int) -> list[Path]:
    sets = ["davis16", "ecssd", "people-removebg", "alphamatting"]
    picked: list[Path] = []
    for name in sets:
        picked += sorted((EVAL / name / "images").iterdir())[: max(1, count // len(sets))]
    return picked[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not EVAL.is_dir():
        print(f"needs the eval photos at {EVAL}", file=sys.stderr)
        return 2
    settings = Settings()
    registry, weights = settings.registry(), settings.weights()
    images = [io.decode(p).rgb for p in _photos(args.photos)]
    probs: dict[str, list[np.ndarray]] = {}
    rows = []
    for label, (model, cfg) in CONFIGS.items():
        spec = registry.get(model)
        weights.ensure(spec)
        if resolve_precision(spec, cfg) == "int8":
            quantize.ensure(weights, spec)  # built once, outside the load time
        t0 = time.perf_counter()
        seg = Segmenter(spec, load_session(spec, weights, cfg))
        load = time.perf_counter() - t0
        seg.predict(images[0])  # warm-up
        times, outs = [], []
        for rgb in images:
            x = seg.preprocess(rgb)
            for _ in range(args.repeat):
                t = time.perf_counter()
                raw = seg.session.run(x)
                times.append(time.perf_counter() - t)
            outs.append(seg.postprocess(raw))
        probs[label] = outs
        rows.append((label, seg.runtime, load, statistics.median(times)))
    ref = probs[next(iter(CONFIGS))]
    print(f"# runtimes on {cpu_model()}, {len(images)} photos × {args.repeat} runs, 1024² input\n")
    print(
        "| configuration | runtime | load s | inference median s | MAD vs fp32 | IoU@0.5 vs fp32 |"
    )
    print("|---|---|---|---|---|---|")
    for label, runtime, load, median in rows:
        mad = float(np.mean([np.abs(a - b).mean() for a, b in zip(probs[label], ref, strict=True)]))
        ious = []
        for a, b in zip(probs[label], ref, strict=True):
            fa, fb = a >= 0.5, b >= 0.5
            ious.append((fa & fb).sum() / max((fa | fb).sum(), 1))
        print(
            f"| {label} | {runtime} | {load:.2f} | {median:.3f} | {mad:.6f} | "
            f"{float(np.mean(ious)):.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
