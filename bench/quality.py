"""Matte quality of cleancut against ground truth, side by side with rembg on the same weights.

    CLEANCUT_CACHE_DIR=/tmp/cc .venv/bin/python bench/quality.py --limit 20 --markdown
    .venv/bin/python bench/quality.py --refinement --sample 40 --markdown   # levels 0-3

``--refinement`` runs ``bench/refinement.py`` instead: edge refinement levels and colour
decontamination against ground truth, with rembg's alpha matting as the peer.

Each image goes through every tool in the same run (alternating which goes first), so load
from other processes on the machine hits both alike. A tool's failure on one image is
counted and listed, not fatal; quality is scored on the images every tool got through.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

import refinement
from _evalsets import DEFAULT_EVAL_DIR, EvalSet, Pair, find_sets, read_mask
from _machine import command_line, machine, source_id
from _metrics import METRIC_BY_KEY, METRICS, U8, SetScores, wins
from _peers import CleancutMatter, Matter, RembgMatter, versions
from _report import fmt, median, ratio, table

if TYPE_CHECKING:
    from cleancut.core.runtimes import Precision, RuntimeName

#: Sets whose stems read ``<scene>_<frame>``: frames of one scene are correlated, so their
#: per-scene means are reported too.
SCENE_SETS = frozenset({"davis16"})
#: Ratios this close to 1 are called a tie in the verdict column.
TIE = 0.005


# ---------------------------------------------------------------- running


@dataclass
class ToolRun:
    scores: SetScores
    seconds: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class SetRun:
    name: str
    soft: bool
    images: int
    runs: dict[str, ToolRun]  # by matter label
    skipped: list[str] = field(default_factory=list)  # unreadable ground truth

    @property
    def scored(self) -> int:
        return min((len(r.scores) for r in self.runs.values()), default=0)


Progress = Callable[[str], None]

#: A tool that fails on this many images of a set before its first success is broken, not
#: unlucky (a missing import, a bad model file): stop instead of scoring an empty run.
SYSTEMIC_FAILURES = 5


class SystemicFailure(Exception):
    pass


def _attempt(matter: Matter, pair: Pair, gt: U8, run: ToolRun) -> U8 | None:
    try:
        out = matter(pair.image)
        if out.alpha.shape != gt.shape:
            raise ValueError(f"matte {out.alpha.shape} vs ground truth {gt.shape}")
    except Exception as exc:  # any failure on one image is data, not a reason to stop
        run.failures.append(f"{pair.stem}: {type(exc).__name__}: {exc}")
        if len(run.failures) >= SYSTEMIC_FAILURES and not run.seconds:
            raise SystemicFailure(f"{matter.label} failed on every image so far") from exc
        return None
    run.seconds.append(out.seconds)
    for stage, secs in out.stages.items():
        run.stages.setdefault(stage, []).append(secs)
    return out.alpha


def run_set(es: EvalSet, matters: Sequence[Matter], edge_radius: int, progress: Progress) -> SetRun:
    result = SetRun(
        es.name, es.soft, len(es.pairs), {m.label: ToolRun(SetScores(edge_radius)) for m in matters}
    )
    started = time.perf_counter()
    for i, pair in enumerate(es.pairs):
        try:
            gt = read_mask(pair.mask)
        except Exception as exc:  # a missing or broken mask skips the image for every tool
            result.skipped.append(f"{pair.stem}: {type(exc).__name__}: {exc}")
            continue
        # Alternate who goes first so cache warmth and background load favour neither.
        order = list(matters) if i % 2 == 0 else list(reversed(matters))
        alphas = {m.label: _attempt(m, pair, gt, result.runs[m.label]) for m in order}
        done = {label: alpha for label, alpha in alphas.items() if alpha is not None}
        if len(done) == len(matters):  # score only images that every tool got through
            for label, alpha in done.items():
                result.runs[label].scores.add(pair.stem, alpha, gt)
        if (i + 1) % 10 == 0 or i + 1 == len(es.pairs):
            progress(f"{es.name}: {i + 1}/{len(es.pairs)} in {time.perf_counter() - started:.0f}s")
    return result


def build_matters(args: argparse.Namespace, workdir: Path) -> list[Matter]:
    """Ours for every (runtime, model), then the peer on each model's own weights file."""
    from cleancut.config import InferenceSettings, Settings

    runtimes: list[RuntimeName | None] = args.runtime or [None]  # None: the library's default
    precisions: list[Precision] = args.precision or ["auto"]

    # Name only what varies, so that a plain run's table stays narrow.
    def label(
        tool: str, model: str, runtime: RuntimeName | None = None, precision: str = "auto"
    ) -> str:
        parts = [tool, model if len(args.models) > 1 else ""]
        parts.append(f"[{runtime}]" if runtime and len(runtimes) > 1 else "")
        parts.append(f"[{precision}]" if len(precisions) > 1 else "")
        return " ".join(p for p in parts if p)

    ours: list[Matter] = []
    for runtime in runtimes:
        for precision in precisions:
            inference = InferenceSettings(runtime=runtime or "auto", precision=precision)
            pool = Settings(inference=inference).model_pool()
            ours += [
                CleancutMatter(pool, m, label("cleancut", m, runtime, precision))
                for m in args.models
            ]
    if args.no_peer:
        return ours
    settings = Settings()
    registry, weights = settings.registry(), settings.weights()
    peers: list[Matter] = []
    for model in args.models:
        spec = registry.get(model)
        path = weights.ensure(spec)  # pulled and verified (loading ours did it already)
        peers.append(RembgMatter(spec, path, workdir, args.peer_graph, label("rembg", model)))
    return ours + peers


def warm_up(matters: Iterable[Matter], first: Pair | None) -> None:
    """One untimed call each: first-run allocation and kernel selection are not latency."""
    if first is None:
        return
    for m in matters:
        try:
            m(first.image)
        except Exception:  # the timed run will count and report the failure
            traceback.print_exc()


# ---------------------------------------------------------------- report

Rows = list[list[str]]


def comparisons(matters: Sequence[Matter]) -> list[tuple[Matter, Matter]]:
    """(A, B) pairs for ratio columns: each of ours against the peer on the same model, or,
    without a peer, each further variant of ours against the first one."""
    ours = [m for m in matters if m.tool == "cleancut"]
    peers = {m.model: m for m in matters if m.tool != "cleancut"}
    if peers:
        return [(m, peers[m.model]) for m in ours]
    return [(m, ours[0]) for m in ours[1:]]


def verdict(ratio: float, higher_is_better: bool) -> str:
    if math.isnan(ratio):
        return "n/a"
    if abs(ratio - 1.0) <= TIE:
        return "tie"
    return "better" if (ratio > 1.0) == higher_is_better else "WORSE"


def quality_rows(sets: Sequence[SetRun], matters: Sequence[Matter]) -> tuple[list[str], Rows]:
    pairs = comparisons(matters)
    headers = ["set", "n", "metric", "better", *(m.label for m in matters)]
    for a, b in pairs:
        headers += [f"{a.label}/{b.label}", "verdict", "imgs +/−"]
    rows: Rows = []
    for sr in sets:
        summaries = {label: run.scores.summary() for label, run in sr.runs.items()}
        for metric in METRICS:
            if metric.soft_only and not sr.soft:
                continue
            values = [summaries[m.label][metric.key] for m in matters]
            row = [sr.name, str(sr.scored), metric.label, _direction(metric.higher_is_better)]
            row += [fmt(v, metric.digits) for v in values]
            for a, b in pairs:
                r = ratio(summaries[a.label][metric.key], summaries[b.label][metric.key])
                row += [fmt(r, 3), verdict(r, metric.higher_is_better)]
                row.append(_win_cell(sr, a, b, metric.key))
            rows.append(row)
    return headers, rows


def _direction(higher_is_better: bool) -> str:
    return "higher" if higher_is_better else "lower"


def _win_cell(sr: SetRun, a: Matter, b: Matter, key: str) -> str:
    """Images where A is strictly better / worse than B: shows whether a small mean
    difference is broad or comes from a few images."""
    metric = METRIC_BY_KEY[key]
    if not metric.per_image:
        return ""
    ra, rb = sr.runs[a.label].scores, sr.runs[b.label].scores
    better, worse = wins(ra.per_image(key), rb.per_image(key), metric.higher_is_better)
    return f"{better}/{worse}"


def latency_rows(sets: Sequence[SetRun], matters: Sequence[Matter]) -> tuple[list[str], Rows]:
    pairs = comparisons(matters)
    headers = ["set", *(f"{m.label} median s" for m in matters)]
    headers += [f"{a.label}/{b.label}" for a, b in pairs]
    headers.append("cleancut stages (decode/infer/refine)")
    rows: Rows = []
    for sr in sets:
        med = {m.label: median(sr.runs[m.label].seconds) for m in matters}
        row = [sr.name, *(fmt(med[m.label], 3) for m in matters)]
        row += [fmt(ratio(med[a.label], med[b.label]), 3) for a, b in pairs]
        ours = sr.runs[matters[0].label].stages
        row.append(
            "/".join(fmt(median(ours.get(s, [])), 3) for s in ("decode", "inference", "refine"))
        )
        rows.append(row)
    return headers, rows


def scene_of(stem: str) -> str:
    return stem.rpartition("_")[0] or stem


def scene_rows(sr: SetRun, matters: Sequence[Matter]) -> tuple[list[str], Rows]:
    headers = ["scene", "frames", *(f"{m.label} IoU" for m in matters)]
    by_scene: dict[str, dict[str, list[float]]] = {}
    for m in matters:
        scores = sr.runs[m.label].scores
        for stem, iou in zip(scores.stems, scores.per_image("iou"), strict=True):
            by_scene.setdefault(scene_of(stem), {}).setdefault(m.label, []).append(iou)
    rows: Rows = []
    for scene, vals in sorted(by_scene.items()):
        n = len(next(iter(vals.values())))
        rows.append([scene, str(n), *(fmt(float(np.mean(vals[m.label])), 4) for m in matters)])
    return headers, rows


@dataclass
class RunInfo:
    command: str
    started: datetime
    seconds: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    source: str


def header_lines(info: RunInfo, matters: Sequence[Matter], args: argparse.Namespace) -> list[str]:
    lines = run_lines(info, args)
    lines += [f"runtime of {m.label}: {m.runtime}" for m in matters]
    lines.append(
        "metrics: mattes as delivered (no min-max stretch before scoring); ground truth "
        "binarised at 0.5 for IoU/MAE/F/S; SAD, MSE and edge MAE use the stored "
        "(soft) ground truth; 'imgs +/−' counts images strictly better/worse"
    )
    return lines


def run_lines(info: RunInfo, args: argparse.Namespace) -> list[str]:
    """What was run, where and when: the header of every report."""
    v = versions()
    return [
        f"command: {info.command}",
        f"date: {info.started:%Y-%m-%d %H:%M} UTC, wall time {info.seconds / 60:.1f} min",
        f"machine: {machine()}",
        f"cleancut: {info.source}",
        "load average (1/5/15 min) before: {:.2f}/{:.2f}/{:.2f}".format(*info.load_before)
        + ", after: {:.2f}/{:.2f}/{:.2f}".format(*info.load_after),
        "versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"eval dir: {args.eval_dir}; edge band ±{args.edge_radius} px; limit {args.limit}",
    ]


def failure_lines(sets: Sequence[SetRun]) -> list[str]:
    lines = []
    for sr in sets:
        lines += [f"{sr.name}: ground truth unreadable: {s}" for s in sr.skipped]
        for label, run in sr.runs.items():
            lines += [f"{sr.name}: {label} failed: {f}" for f in run.failures]
    return lines


def report(
    sets: Sequence[SetRun],
    matters: Sequence[Matter],
    info: RunInfo,
    args: argparse.Namespace,
    markdown: bool,
) -> str:
    bullet = "- " if markdown else ""
    parts = ["\n".join(bullet + line for line in header_lines(info, matters, args))]
    parts += ["Quality", table(*quality_rows(sets, matters), markdown)]
    parts += ["Per-image latency (file in, full-resolution matte out)"]
    parts.append(table(*latency_rows(sets, matters), markdown))
    for sr in sets:
        if sr.name in SCENE_SETS and sr.scored:
            parts += [
                f"{sr.name}: mean IoU@0.5 per scene",
                table(*scene_rows(sr, matters), markdown),
            ]
    failures = failure_lines(sets)
    total = sum(len(r.failures) for sr in sets for r in sr.runs.values())
    parts.append(f"Failures: {total} tool calls, {sum(len(sr.skipped) for sr in sets)} skipped")
    if failures:
        parts.append("\n".join(bullet + line for line in failures))
    return "\n\n".join(parts)


def dump_json(path: Path, sets: Sequence[SetRun], info: RunInfo) -> None:
    data = {
        "command": info.command,
        "cleancut": info.source,
        "started": info.started.isoformat(),
        "seconds": info.seconds,
        "sets": {
            sr.name: {
                label: {
                    "summary": run.scores.summary(),
                    "stems": run.scores.stems,
                    "per_image": {m.key: run.scores.per_image(m.key) for m in METRICS},
                    "seconds": run.seconds,
                    "failures": run.failures,
                }
                for label, run in sr.runs.items()
            }
            for sr in sets
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=True))


# ---------------------------------------------------------------- command line


def _runtimes(text: str) -> list[RuntimeName]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names or not set(names) <= {"openvino", "onnxruntime"}:
        raise argparse.ArgumentTypeError(f"choose openvino and/or onnxruntime, not {text!r}")
    return cast("list[RuntimeName]", names)


def _precisions(text: str) -> list[Precision]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names or not set(names) <= {"auto", "int8", "float", "f32"}:
        raise argparse.ArgumentTypeError(f"choose from auto, int8, float and f32, not {text!r}")
    return cast("list[Precision]", names)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--set", dest="sets", action="append", help="eval set (repeatable; default: all)"
    )
    p.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    p.add_argument("--limit", type=int, default=None, help="first N images of each set")
    p.add_argument(
        "--models",
        type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
        default=["isnet-general"],
        help="comma-separated model names (default: isnet-general)",
    )
    p.add_argument(
        "--runtime",
        type=_runtimes,
        default=None,
        help="openvino, onnxruntime, or both comma-separated (default: the library's choice)",
    )
    p.add_argument(
        "--precision",
        type=_precisions,
        default=None,
        help="auto, int8, float, f32, comma-separated to compare (default: auto)",
    )
    p.add_argument("--no-peer", action="store_true", help="skip rembg")
    p.add_argument(
        "--peer-graph",
        choices=["fp32", "shipped"],
        default="fp32",
        help="weights file given to rembg: a pruned fp32 copy (its fastest) or the file as is",
    )
    p.add_argument("--edge-radius", type=int, default=8, help="half-width of the edge band, px")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables as well")
    p.add_argument("--json", type=Path, default=None, help="also write per-image results here")
    refinement.add_arguments(p)
    return p.parse_args(argv)


def log(message: str) -> None:
    print(f"[quality {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    eval_sets = find_sets(args.eval_dir, args.sets, args.limit)
    load = os.getloadavg()
    info = RunInfo(command_line(), datetime.now(UTC), 0.0, load, load, source_id())
    if args.refinement:
        return refinement_main(args, eval_sets, info)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cleancut-bench-") as tmp:
        log("loading models")
        matters = build_matters(args, Path(tmp))
        warm_up(matters, next((s.pairs[0] for s in eval_sets if s.pairs), None))
        try:
            sets = [run_set(es, matters, args.edge_radius, log) for es in eval_sets]
        except SystemicFailure as exc:
            log(f"stopping: {exc}: {exc.__cause__!r}")
            return 2
    info.seconds, info.load_after = time.perf_counter() - t0, os.getloadavg()
    print(report(sets, matters, info, args, markdown=False))
    if args.markdown:
        print("\n\n" + report(sets, matters, info, args, markdown=True))
    if args.json:
        dump_json(args.json, sets, info)
    return 0


def refinement_main(args: argparse.Namespace, eval_sets: list[EvalSet], info: RunInfo) -> int:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cleancut-bench-") as tmp:
        result = refinement.run(args, eval_sets, log, Path(tmp))
    info.seconds, info.load_after = time.perf_counter() - t0, os.getloadavg()
    for markdown in (False, True) if args.markdown else (False,):
        bullet = "- " if markdown else ""
        lines = [*run_lines(info, args), *result.lines]
        parts = ["\n".join(bullet + line for line in lines)]
        for title, body in result.sections(markdown):
            parts += [title, body]
        print("\n\n".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
