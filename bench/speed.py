"""End-to-end speed of cleancut against rembg and IMG.LY, side by side in one run.

    CLEANCUT_EXTRAS=dev,bench ./scripts/setup.sh      # rembg (IMG.LY is installed from npm here)
    .venv/bin/python bench/speed.py                     # make bench-speed

Inputs are a 12 MP and a 1 MP JPEG made in a temporary folder from photos in
``../shared/eval`` (upscaled with LANCZOS, given a light, seeded grain so that they are
not unnaturally smooth, saved at quality 92); nothing is written into the repository.

Every tool configuration runs in its own process (its peak RSS is its ``VmHWM``)
and stays loaded for the whole run of one input. After one untimed warm-up each, the runs
go in rounds, every tool once a round in a freshly shuffled (seeded) order, so that load
from other processes, and whatever one tool leaves behind for the next, falls on every
tool alike; times are medians over the runs. One
run is one end-to-end job: read the JPEG, decode, resize and normalise for the model,
inference, build the full-resolution matte, encode the output in memory.

Quality parity: the alpha of every tool's PNG output is compared with rembg's (IoU of
alpha ≥ 128, and the mean absolute difference).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from _machine import command_line, machine, source_id
from _speed_procs import (
    IMGLY_VERSION,
    Worker,
    ensure_imgly,
    imgly_worker,
    node_version,
    python_worker,
)

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
#: The largest real photos of two sets: hair (alphamatting) and a person (people-removebg).
PHOTOS = {
    "12 MP": ("alphamatting/images/GT22.png", 12.0),
    "1 MP": ("people-removebg/images/p120.jpg", 1.0),
}
#: Output name -> (format, lossless); WebP is lossless unless asked for lossy.
OUTPUTS = {
    "png": ("png", True),
    "webp": ("webp", True),
    "webp-lossy": ("webp", False),
    "avif": ("avif", True),
}
STAGES = ("decode", "preprocess", "inference", "matte", "encode")


@dataclass(frozen=True)
class Config:
    label: str
    tool: str  # cleancut, rembg or imgly
    options: dict[str, Any]
    outputs: tuple[str, ...]


@dataclass
class Row:
    config: Config
    input: str
    output: str
    seconds: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    size: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def configs(args: argparse.Namespace) -> list[Config]:
    ours = tuple(args.outputs.split(","))
    peer = tuple(args.peer_outputs.split(","))
    out = [
        Config("cleancut", "cleancut", {}, ours),
        Config("cleancut, refine level 0", "cleancut", {"refine": 0}, ("png",)),
        # The float graph (bf16 where the CPU has it): the default before the 8-bit one.
        Config("cleancut, float model", "cleancut", {"precision": "float"}, ("png",)),
        Config("cleancut, Pillow PNG writer", "cleancut", {"png_writer": "pillow"}, ("png",)),
    ]
    if args.onnxruntime:
        ort = {"runtime": "onnxruntime"}
        out.append(Config("cleancut, onnxruntime", "cleancut", ort, ("png",)))
    if not args.no_rembg:
        out.append(Config("rembg", "rembg", {}, peer))
    if not args.no_imgly:
        imgly = tuple(o for o in peer if o in ("png", "webp-lossy", "webp"))
        out.append(Config("IMG.LY", "imgly", {}, imgly))
    return out


def make_input(src: Path, megapixels: float, dest: Path, seed: int) -> Path:
    with Image.open(src) as im:
        rgb = im.convert("RGB")
    scale = (megapixels * 1e6 / (rgb.width * rgb.height)) ** 0.5
    size = (round(rgb.width * scale), round(rgb.height * scale))
    big = np.asarray(rgb.resize(size, Image.Resampling.LANCZOS), dtype=np.int16)
    grain = np.random.default_rng(seed).normal(0.0, 2.0, big.shape)
    noisy = np.clip(big + np.rint(grain), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(dest, "JPEG", quality=92)
    return dest


def start(config: Config, workdir: Path, imgly_dir: Path) -> Worker:
    if config.tool == "imgly":
        return imgly_worker(config.label, imgly_dir, workdir)
    return python_worker(
        config.label, config.tool, {**config.options, "workdir": str(workdir)}, workdir
    )


def request(path: Path, output: str, save: Path | None = None) -> dict[str, Any]:
    fmt, lossless = OUTPUTS[output]
    return {"input": str(path), "format": fmt, "lossless": lossless, "save": save and str(save)}


def measure_input(
    name: str,
    path: Path,
    cfgs: Sequence[Config],
    runs: int,
    workdir: Path,
    imgly_dir: Path,
    log: Any,
) -> tuple[list[Row], dict[str, Path], dict[str, float], dict[str, str]]:
    workers: dict[str, Worker] = {}
    rows = {(c.label, o): Row(c, name, o) for c in cfgs for o in c.outputs}
    saved: dict[str, Path] = {}
    try:
        for c in cfgs:
            log(f"{name}: starting {c.label}")
            workers[c.label] = start(c, workdir, imgly_dir)
            # One untimed warm-up; IMG.LY loads a session per output format, so one each.
            for o in c.outputs if c.tool == "imgly" else c.outputs[:1]:
                workers[c.label].run(request(path, o))
        for r in range(runs):
            # A fresh order each round (seeded, so runs are repeatable): a fixed rotation
            # kept the same tool right after IMG.LY every round, and the first request
            # after IMG.LY's run measured slower (12 MP decode 95-127 ms against 29).
            order = list(cfgs)
            random.Random(r).shuffle(order)
            for c in order:
                for o in c.outputs:
                    save = None
                    if r == 0 and o == "png":
                        save = workdir / f"{_slug(name)}-{_slug(c.label)}.png"
                        saved[c.label] = save
                    ans = workers[c.label].run(request(path, o, save))
                    row = rows[(c.label, o)]
                    row.seconds.append(ans["seconds"])
                    row.size = ans["bytes"]
                    for k, v in ans["stages"].items():
                        row.stages.setdefault(k, []).append(v)
                    log(f"{name} round {r + 1}/{runs}: {c.label} {o} {ans['seconds']:.2f} s")
    finally:
        rss = {label: w.close() for label, w in workers.items()}
    describe = {label: w.describe for label, w in workers.items()}
    return list(rows.values()), saved, rss, describe


def alpha_of(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))[..., 3]


def parity(saved: dict[str, Path], reference: str = "rembg") -> list[tuple[str, float, float]]:
    """(label, IoU of alpha ≥ 128, mean |Δalpha| / 255) of each tool against ``reference``."""
    if reference not in saved:
        return []
    ref = alpha_of(saved[reference])
    out = []
    for label, path in saved.items():
        if label == reference:
            continue
        a = alpha_of(path)
        fa, fb = a >= 128, ref >= 128
        iou = float((fa & fb).sum() / max(int((fa | fb).sum()), 1))
        mad = float(np.abs(a.astype(np.int16) - ref).mean() / 255)
        out.append((label, iou, mad))
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def _ms(values: list[float] | None) -> str:
    return "—" if not values else f"{statistics.median(values) * 1000:.0f}"


def table(rows: list[Row], rss: dict[tuple[str, str], float]) -> list[str]:
    lines = [
        "| tool / configuration | input | output | decode ms | preprocess ms | inference ms "
        "| matte ms | encode ms | end to end s (median) | speed-up vs rembg | peak RSS MiB "
        "| output MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rembg = {(r.input, r.output): r.median for r in rows if r.config.tool == "rembg"}
    for r in rows:
        base = rembg.get((r.input, r.output))
        mark = ""
        if base is None and (r.input, "png") in rembg:
            base, mark = rembg[(r.input, "png")], " (vs PNG)"
        speedup = "—" if base is None else f"{base / r.median:.2f}×{mark}"
        stages = " | ".join(_ms(r.stages.get(s)) for s in STAGES)
        lines.append(
            f"| {r.config.label} | {r.input} | {r.output} | {stages} | {r.median:.2f} "
            f"| {speedup} | {rss.get((r.config.label, r.input), 0):.0f} | {r.size / 1e6:.2f} |"
        )
    return lines


def encoders(args: argparse.Namespace) -> int:
    from _speed_encoders import cutout_of, encoder_table

    name = args.inputs.split(",")[0].strip()
    rel, mp = PHOTOS[name]
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cleancut-speed-") as tmp:
        path = make_input(args.eval_dir / rel, mp, Path(tmp) / "input.jpg", seed=0)
        rgba = cutout_of(str(path))
    lines = encoder_table(rgba, args.runs, lambda m: print(m, file=sys.stderr, flush=True))
    print(f"Machine: {machine()}")
    print(f"Code: {source_id()}")
    print(f"Command: {command_line()}")
    print(
        "Load average (1/5/15 min) before: {:.2f}/{:.2f}/{:.2f}".format(*load_before)
        + ", after: {:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())
        + f"; wall time {time.perf_counter() - t0:.0f} s"
    )
    h, w = rgba.shape[:2]
    print(f"Input: cleancut's RGBA cut-out of the {name} bench photo ({w}×{h})")
    print()
    print("\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL)
    parser.add_argument("--inputs", default="12 MP,1 MP", help="comma-separated: 12 MP, 1 MP")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row (median)")
    parser.add_argument("--outputs", default="png,webp,webp-lossy,avif", help="cleancut's")
    parser.add_argument("--peer-outputs", default="png", help="the peers' (png, webp-lossy)")
    parser.add_argument("--onnxruntime", action="store_true", help="add cleancut on onnxruntime")
    parser.add_argument("--no-rembg", action="store_true")
    parser.add_argument("--no-imgly", action="store_true")
    parser.add_argument(
        "--imgly-dir",
        type=Path,
        default=Path.home() / ".cache" / "cleancut-bench" / f"imgly-{IMGLY_VERSION}",
    )
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument(
        "--encoders",
        action="store_true",
        help="instead: compare the encoders on cleancut's cut-out of the first input",
    )
    args = parser.parse_args()
    if args.encoders:
        return encoders(args)

    cfgs = configs(args)
    if not args.no_imgly:
        ensure_imgly(args.imgly_dir)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    all_rows: list[Row] = []
    rss: dict[tuple[str, str], float] = {}
    describe: dict[str, str] = {}
    parity_lines = []

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="cleancut-speed-") as tmp:
        workdir = Path(tmp)
        for i, name in enumerate(n.strip() for n in args.inputs.split(",")):
            rel, mp = PHOTOS[name]
            path = make_input(args.eval_dir / rel, mp, workdir / f"{_slug(name)}.jpg", seed=i)
            with Image.open(path) as im:
                log(f"{name}: {im.width}×{im.height} JPEG from {rel}")
            rows, saved, worker_rss, desc = measure_input(
                name, path, cfgs, args.runs, workdir, args.imgly_dir, log
            )
            all_rows += rows
            describe.update(desc)
            rss.update({(label, name): v for label, v in worker_rss.items()})
            for label, iou, mad in parity(saved):
                parity_lines.append(f"| {name} | {label} | {iou:.4f} | {mad:.4f} |")
    load_after = os.getloadavg()

    print(f"Machine: {machine()}")
    print(f"Code: {source_id()}")
    print(f"Command: {command_line()}")
    print(
        "Load average (1/5/15 min) before: {:.2f}/{:.2f}/{:.2f}".format(*load_before)
        + ", after: {:.2f}/{:.2f}/{:.2f}".format(*load_after)
        + f"; wall time {time.perf_counter() - t0:.0f} s; {args.runs} timed runs per row"
    )
    print(f"Node {node_version()}")
    for label, text in describe.items():
        print(f"- {label}: {text}")
    print()
    print("\n".join(table(all_rows, rss)))
    if parity_lines:
        print()
        print("Mask parity with rembg (alpha of the PNG outputs):")
        print()
        print("| input | tool | IoU (alpha ≥ 128) | mean abs. alpha difference |")
        print("|---|---|---|---|")
        print("\n".join(parity_lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        dump = [
            {
                "config": r.config.label,
                "input": r.input,
                "output": r.output,
                "seconds": r.seconds,
                "stages": r.stages,
                "bytes": r.size,
                "peak_rss_mib": rss.get((r.config.label, r.input)),
            }
            for r in all_rows
        ]
        args.json.write_text(json.dumps(dump, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
