"""Edge refinement (levels 0–3) and colour decontamination, against ground truth and rembg.

Run through ``bench/quality.py --refinement`` (see its ``--help``). For each sampled photo
the model runs once; every level then refines that same matte, so the levels differ only
by refinement. Reported:

* **edge-band MAE** of levels 0–3 (and MAE, IoU, SAD/MSE on soft sets) with the images
  better / worse than level 0, and the refinement time per image;
* the **peer**, rembg on the same weights: its plain mask and its ``alpha_matting=True``
  (trimap from its mask, pymatting's closed-form matting, foreground estimate), on the
  first ``--peer-limit`` sampled photos of each set, beside our levels on the same photos,
  each timed end to end (file in, matte out);
* **fringe error**: ground-truth cut-outs pasted onto strongly coloured backgrounds. The
  colour shown at soft edges (0.05 < α < 0.95) is compared with the true foreground colour
  F: the composite itself without decontamination, our decontamination at strengths 0.5
  and 1, and pymatting's ``estimate_foreground_ml`` (what rembg's alpha matting returns as
  colour). Alpha is the ground truth (the colour estimate alone) or our pipeline's matte
  (the model's matte of the photo, refined at the default level on the composite);
* refinement and decontamination time on a 12 MP (4000×3000) upscale of an eval photo.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from _evalsets import EvalSet, Pair, read_mask
from _metrics import U8, SetScores, wins
from _report import fmt, median, ratio, table

LEVELS = (0, 1, 2, 3)
#: Strongly coloured backgrounds for the fringe composites: a green screen, and a colour
#: no subject in the eval sets is close to.
BACKGROUNDS = {"green": (0, 200, 0), "magenta": (230, 0, 230)}
STRENGTHS = (0.5, 1.0)
#: alpha counted as a soft edge for the fringe error
SOFT = (0.05, 0.95)
OFF = "off (the composite as is)"
PEER_FG = "pymatting estimate_foreground_ml (rembg), ground-truth α"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--refinement")
    g.add_argument("--refinement", action="store_true", help="benchmark edge refinement instead")
    g.add_argument("--sample", type=int, default=20, help="photos per set, evenly spaced")
    g.add_argument("--peer-limit", type=int, default=3, help="sampled photos per set for rembg")
    g.add_argument("--fringe-limit", type=int, default=8, help="sampled photos per set, fringe")
    g.add_argument("--big-repeats", type=int, default=3, help="runs of each 12 MP timing")
    g.add_argument(
        "--matte-cache",
        type=Path,
        default=None,
        help="keep the model's mattes here (PNG per set/stem) and reuse them on later runs",
    )


# ---------------------------------------------------------------- per-set results


@dataclass
class Column:
    scores: SetScores
    ms: list[float] = field(default_factory=list)


@dataclass
class SetResult:
    es: EvalSet
    levels: dict[int, Column]
    peer: dict[str, Column] = field(default_factory=dict)
    #: fringe errors by method, one value per photo (mean over the backgrounds)
    fringe: dict[str, list[float]] = field(default_factory=dict)
    fringe_ms: dict[str, list[float]] = field(default_factory=dict)
    decontaminate_ms: list[float] = field(default_factory=list)


def _timed(fn: Callable[..., U8], *args: object) -> tuple[U8, float]:
    """fn(*args) and the milliseconds it took."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, 1000.0 * (time.perf_counter() - t0)


def run_set(
    es: EvalSet, tools: Tools, args: argparse.Namespace, log: Callable[[str], None]
) -> SetResult:
    from cleancut.core import refine
    from cleancut.core.types import DEFAULT_REFINE_LEVEL

    radius = args.edge_radius
    res = SetResult(es, {lv: Column(SetScores(radius)) for lv in LEVELS})
    started = time.perf_counter()
    for i, pair in enumerate(es.pairs):
        gt = read_mask(pair.mask)
        peer = tools.rembg is not None and i < args.peer_limit
        # Photos the peer sees are timed end to end, so their model runs uncached.
        (rgb, matte), model_ms = tools.model(pair, cached=not peer)
        refined: dict[int, U8] = {}
        for level in LEVELS:
            refined[level], ms = _timed(refine.refine, rgb, matte, level)
            res.levels[level].scores.add(pair.stem, refined[level], gt)
            res.levels[level].ms.append(ms)
        _, ms = _timed(refine.decontaminate, rgb, refined[DEFAULT_REFINE_LEVEL], 1.0)
        res.decontaminate_ms.append(ms)
        if peer and tools.rembg is not None:
            for level in LEVELS:
                col = res.peer.setdefault(f"cleancut level {level}", Column(SetScores(radius)))
                col.scores.add(pair.stem, refined[level], gt)
                col.ms.append(model_ms + res.levels[level].ms[-1])
            for label, call in (
                ("rembg mask", tools.rembg.__call__),
                ("rembg alpha matting", tools.rembg.matting),
            ):
                out = call(pair.image)
                col = res.peer.setdefault(label, Column(SetScores(radius)))
                col.scores.add(pair.stem, out.alpha, gt)
                col.ms.append(1000.0 * out.seconds)
        if i < args.fringe_limit:
            _fringe(res, rgb, gt, matte, es.soft)
        log(f"{es.name}: {i + 1}/{len(es.pairs)} in {time.perf_counter() - started:.0f}s")
    return res


# ---------------------------------------------------------------- fringe


def fringe_scene(rgb: U8, gt: U8, soft_gt: bool) -> tuple[U8, U8]:
    """(true foreground colour F, alpha) for a synthetic composite of this photo's subject.

    A binary mask gets a soft edge (Gaussian, σ = 1 px), so that it has pixels to score.
    F is the photo where the subject is (nearly) opaque, extended smoothly outward by
    normalised convolution at growing scales: the photo's own edge pixels hold its old
    background, so they cannot serve as F."""
    alpha = gt if soft_gt else np.asarray(cv2.GaussianBlur(gt, (0, 0), 1.0), np.uint8)
    known = (alpha >= round(SOFT[1] * 255)).astype(np.float32)
    colour = rgb.astype(np.float32)
    f = colour * known[..., None]
    have = known > 0
    for sigma in (1, 2, 4, 8, 16, 32, 64):
        den = cv2.GaussianBlur(known, (0, 0), sigma)
        num = cv2.GaussianBlur(colour * known[..., None], (0, 0), sigma)
        fill = ~have & (den > 1e-3)
        f[fill] = num[fill] / den[fill][:, None]
        have |= fill
    if not have.all():
        f[~have] = colour[known > 0].mean(axis=0) if known.any() else 128.0
    return np.clip(f + 0.5, 0, 255).astype(np.uint8), alpha


def _fringe(res: SetResult, rgb: U8, gt: U8, matte: U8, soft_gt: bool) -> None:
    from pymatting import estimate_foreground_ml

    from cleancut.core import refine
    from cleancut.core.types import DEFAULT_REFINE_LEVEL

    f, alpha = fringe_scene(rgb, gt, soft_gt)
    a = alpha.astype(np.float32) / 255.0
    where = (a > SOFT[0]) & (a < SOFT[1])
    if not where.any():
        return
    truth = f.astype(np.float32)
    per: dict[str, list[float]] = {}

    def score(method: str, shown: U8) -> None:
        err = np.abs(shown.astype(np.float32) - truth).mean(axis=2)[where].mean()
        per.setdefault(method, []).append(float(err))

    for colour in BACKGROUNDS.values():
        bg = np.asarray(colour, np.float32)
        comp = np.clip(a[..., None] * truth + (1 - a[..., None]) * bg + 0.5, 0, 255)
        comp = comp.astype(np.uint8)
        score(OFF, comp)
        ours = refine.refine(comp, matte, DEFAULT_REFINE_LEVEL)
        for source, used in (("ground-truth α", alpha), ("cleancut α", ours)):
            for s in STRENGTHS:
                shown, ms = _timed(refine.decontaminate, comp, used, s)
                score(f"cleancut {s:g}, {source}", shown)
                if s == 1.0 and source == "ground-truth α":
                    res.fringe_ms.setdefault("cleancut", []).append(ms)
        t0 = time.perf_counter()
        fg = estimate_foreground_ml(comp / 255.0, a.astype(np.float64))
        res.fringe_ms.setdefault("pymatting", []).append(1000.0 * (time.perf_counter() - t0))
        score(PEER_FG, np.clip(fg * 255 + 0.5, 0, 255).astype(np.uint8))
    for method, vals in per.items():
        res.fringe.setdefault(method, []).append(statistics.fmean(vals))


# ---------------------------------------------------------------- tools


class Tools:
    """Our model (run once per photo, matte cached in memory) and the peer."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from cleancut.config import Settings

        settings = Settings()
        self.pool = settings.model_pool()
        self.model_name = args.models[0]
        self.runtime = self.pool.get(self.model_name).runtime
        self.cache: Path | None = args.matte_cache
        self.rembg = None
        if not args.no_peer:
            from _peers import RembgMatter

            spec = settings.registry().get(self.model_name)
            weights = settings.weights().ensure(spec)
            self.rembg = RembgMatter(spec, weights, workdir, args.peer_graph, "rembg")

    def model(self, pair: Pair, cached: bool = True) -> tuple[tuple[U8, U8], float]:
        """(photo, model matte) as cleancut decodes and predicts it, and the time taken
        (NaN when the matte came from ``--matte-cache``)."""
        import cleancut
        from cleancut.core import io

        stored = (
            self.cache / pair.image.parent.parent.name / f"{pair.stem}.png" if self.cache else None
        )
        if cached and stored is not None and stored.is_file():
            return (io.decode(pair.image.read_bytes()).rgb, read_mask(stored)), math.nan
        t0 = time.perf_counter()
        res = cleancut.remove(pair.image, model=self.model_name, pool=self.pool, level=0)
        ms = 1000.0 * (time.perf_counter() - t0)
        if stored is not None:
            from PIL import Image

            stored.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(res.alpha).save(stored)
        return (res.image.rgb, res.alpha), ms

    def warm_up(self, pair: Pair) -> None:
        """First calls compile (OpenVINO, pymatting's numba kernels): not latency."""
        from pymatting import estimate_foreground_ml

        rgb, matte = self.model(pair)[0]
        if self.rembg is not None:
            self.rembg(pair.image)
            self.rembg.matting(pair.image)
        a = matte.astype(np.float64) / 255.0
        estimate_foreground_ml(rgb / 255.0, a)


# ---------------------------------------------------------------- 12 MP


def big_timings(pair: Pair, tools: Tools, repeats: int) -> tuple[str, list[list[str]]]:
    """Wall seconds (median and best of ``repeats``) and CPU seconds of refinement and
    decontamination on a 4000×3000 bicubic upscale of ``pair`` and its model matte."""
    from cleancut.core import refine
    from cleancut.core.types import Refine

    rgb, matte = tools.model(pair)[0]
    size = (4000, 3000) if rgb.shape[1] >= rgb.shape[0] else (3000, 4000)
    big = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), np.uint8)
    big_a = np.asarray(cv2.resize(matte, size, interpolation=cv2.INTER_CUBIC), np.uint8)
    l2 = refine.refine(big, big_a, 2)
    jobs: list[tuple[str, Callable[[], object]]] = [
        (f"level {lv}", lambda lv=lv: refine.refine(big, big_a, lv)) for lv in (1, 2, 3)
    ]
    jobs.append(
        ("decontaminate 1.0 (on the level-2 matte)", lambda: refine.decontaminate(big, l2, 1.0))
    )
    jobs.append(("level 3 + decontaminate 1.0", lambda: refine.apply(big, big_a, Refine(3, 1.0))))
    rows = []
    for label, job in jobs:
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            job()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows.append([label, fmt(median(wall), 2), fmt(min(wall), 2), fmt(median(cpu), 2)])
    band = float(((big_a > 0) & (big_a < 255)).mean())
    name = f"{pair.image.parent.parent.name}/{pair.stem}"
    note = f"photo: {name} upscaled to {size[0]}×{size[1]}, soft pixels {band:.1%}"
    return note, rows


# ---------------------------------------------------------------- report


def level_rows(results: Sequence[SetResult]) -> tuple[list[str], list[list[str]]]:
    headers = ["set", "n", "level", "edge-band MAE", "vs level 0", "imgs +/−", "MAE", "IoU"]
    headers += ["refine ms/img (median)"]
    rows = []
    for r in results:
        base = r.levels[0].scores
        for level, col in r.levels.items():
            s = col.scores.summary()
            b, w = wins(col.scores.per_image("edge_mae"), base.per_image("edge_mae"), False)
            rows.append(
                [
                    r.es.name,
                    str(len(col.scores)),
                    str(level),
                    fmt(s["edge_mae"], 4),
                    fmt(ratio(s["edge_mae"], base.summary()["edge_mae"]), 3),
                    f"{b}/{w}" if level else "",
                    fmt(s["mae"], 4),
                    fmt(s["iou"], 4),
                    fmt(median(col.ms), 0) if level else "0",
                ]
            )
    return headers, rows


def peer_rows(results: Sequence[SetResult]) -> tuple[list[str], list[list[str]]]:
    headers = ["set", "n", "method", "edge-band MAE", "vs own baseline", "MAE"]
    headers += ["s/img end to end (median)"]
    rows = []
    for r in results:
        if not r.peer:
            continue
        ours0 = r.peer["cleancut level 0"].scores.summary()["edge_mae"]
        theirs0 = r.peer["rembg mask"].scores.summary()["edge_mae"]
        for label, col in r.peer.items():
            s = col.scores.summary()
            base = ours0 if label.startswith("cleancut") else theirs0
            rows.append(
                [
                    r.es.name,
                    str(len(col.scores)),
                    label,
                    fmt(s["edge_mae"], 4),
                    fmt(ratio(s["edge_mae"], base), 3),
                    fmt(s["mae"], 4),
                    fmt(median(col.ms) / 1000.0, 2),
                ]
            )
    return headers, rows


def fringe_rows(results: Sequence[SetResult]) -> tuple[list[str], list[list[str]]]:
    headers = ["set", "n", "decontamination", "fringe error", "vs off", "ms/img (median)"]
    rows = []
    for r in results:
        if not r.fringe:
            continue
        off = statistics.fmean(r.fringe[OFF])
        for method, vals in r.fringe.items():
            mean = statistics.fmean(vals)
            timing = ""
            if method == PEER_FG:
                timing = fmt(median(r.fringe_ms["pymatting"]), 0)
            elif method.startswith("cleancut 1, ground"):
                timing = fmt(median(r.fringe_ms["cleancut"]), 0)
            row = [r.es.name, str(len(vals)), method, fmt(mean, 2), fmt(mean / off, 3), timing]
            rows.append(row)
    return headers, rows


def summary_rows(results: Sequence[SetResult]) -> tuple[list[str], list[list[str]]]:
    """One row per method: edge-band MAE per set as a ratio to level 0 on the same photos,
    fringe error (mean over sets; our pipeline's alpha) and median time per image."""
    from cleancut.core.types import DEFAULT_REFINE_LEVEL

    names = [r.es.name for r in results]
    headers = ["method", *(f"{n} edge vs L0" for n in names)]
    headers += ["fringe error (cleancut α)", "fringe error (true α)", "time/img"]
    fringe_off = fmt(_mean_over_sets(results, OFF), 2)
    rows = []
    for level in LEVELS:
        cells = [_edge_ratio(r.levels[level], r.levels[0]) for r in results]
        ms = median([m for r in results for m in r.levels[level].ms])
        time_cell = f"{ms:.0f} ms" if level else "0"
        rows.append([f"level {level}", *cells, fringe_off, fringe_off, time_cell])
    for s in STRENGTHS:
        err = _mean_over_sets(results, f"cleancut {s:g}, cleancut α")
        true = _mean_over_sets(results, f"cleancut {s:g}, ground-truth α")
        ms = median([m for r in results for m in r.decontaminate_ms])
        label = f"level {DEFAULT_REFINE_LEVEL} + decontaminate {s:g}"
        rows.append([label, *([""] * len(results)), fmt(err, 2), fmt(true, 2), f"+{ms:.0f} ms"])
    peer = [r for r in results if r.peer]
    if peer:
        # * on the peer's photos only, against our level 0 on the same photos
        cells = [
            _edge_ratio(r.peer["rembg alpha matting"], r.peer["cleancut level 0"]) + "*"
            if r.peer
            else ""
            for r in results
        ]
        err = _mean_over_sets(results, PEER_FG)
        secs = median([m for r in peer for m in r.peer["rembg alpha matting"].ms]) / 1000.0
        rows.append(["rembg alpha matting", *cells, "", fmt(err, 2), f"{secs:.1f} s*"])
    return headers, rows


def _edge_ratio(col: Column, base: Column) -> str:
    return fmt(ratio(col.scores.summary()["edge_mae"], base.scores.summary()["edge_mae"]), 3)


def _mean_over_sets(results: Sequence[SetResult], key: str) -> float:
    vals = [statistics.fmean(r.fringe[key]) for r in results if r.fringe.get(key)]
    return statistics.fmean(vals) if vals else math.nan


@dataclass
class Report:
    lines: list[str]
    results: list[SetResult]
    big: tuple[str, list[list[str]]] | None

    def sections(self, md: bool) -> list[tuple[str, str]]:
        """(title, table) pairs, plain text or Markdown."""
        out = [
            (
                "Summary: edge-band MAE as a ratio to level 0 (lower is better), fringe error "
                "and time per image",
                table(*summary_rows(self.results), md),
            ),
            ("Edge refinement by level", table(*level_rows(self.results), md)),
        ]
        if any(r.peer for r in self.results):
            out.append(
                (
                    "Peer: rembg on the same weights, on the first sampled photos",
                    table(*peer_rows(self.results), md),
                )
            )
        out.append(
            (
                "Fringe error: mean |shown − true F| (0..255) at soft edges",
                table(*fringe_rows(self.results), md),
            )
        )
        if self.big is not None:
            note, rows = self.big
            heads = ["operation", "wall s (median)", "wall s (best)", "CPU s (median)"]
            out.append((f"12 MP ({note})", table(heads, rows, md)))
        return out


def run(
    args: argparse.Namespace, sets: Sequence[EvalSet], log: Callable[[str], None], workdir: Path
) -> Report:
    from _evalsets import spread

    sampled = [spread(es, args.sample) for es in sets]
    log("loading models")
    tools = Tools(args, workdir)
    first = next((es.pairs[0] for es in sampled if es.pairs), None)
    if first is not None:
        tools.warm_up(first)
    results = [run_set(es, tools, args, log) for es in sampled]
    big = None
    if args.big_repeats > 0 and first is not None:
        log("12 MP timings")
        big = big_timings(first, tools, args.big_repeats)
    lines = [
        f"runtime of cleancut {tools.model_name}: {tools.runtime}",
        f"sampled photos per set: {', '.join(f'{es.name} {len(es.pairs)}' for es in sampled)} "
        f"(evenly spaced); rembg on the first {0 if args.no_peer else args.peer_limit}, "
        f"fringe composites on the first {args.fringe_limit}",
        "fringe backgrounds: " + ", ".join(f"{k} {v}" for k, v in BACKGROUNDS.items()),
    ]
    if tools.rembg is not None:
        lines.append(f"pymatting warned of a failed preconditioner {tools.rembg.slow_solves} times")
    return Report(lines, results, big)
