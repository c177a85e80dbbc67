"""Per-set quality scores of one matting tool against ground truth.

The standard salient-object metrics come from ``pysodmetrics``; SAD, MSE and the edge-band
MAE are a few lines of numpy here. Every metric sees the matte exactly as the tool
delivers it: ``pysodmetrics`` would otherwise min-max stretch each prediction first
(MATLAB's ``mapminmax`` convention), which hides a tool's own stretching or lack of it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
import py_sod_metrics as sod
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int
    per_image: bool = True  # False: a dataset-level score (max F), with no per-image value
    soft_only: bool = False  # reported only for sets whose ground truth is soft alpha


METRICS: tuple[Metric, ...] = (
    Metric("iou", "IoU@0.5", higher_is_better=True, digits=4),
    Metric("mae", "MAE", higher_is_better=False, digits=4),
    Metric("max_f", "max F (β²=0.3)", higher_is_better=True, digits=4, per_image=False),
    Metric("s", "S-measure", higher_is_better=True, digits=4),
    Metric("edge_mae", "edge-band MAE", higher_is_better=False, digits=4),
    Metric("sad", "SAD (/1000)", higher_is_better=False, digits=3, soft_only=True),
    Metric("mse", "MSE", higher_is_better=False, digits=5, soft_only=True),
)
METRIC_BY_KEY: Mapping[str, Metric] = {m.key: m for m in METRICS}


def binarise(alpha: U8) -> NDArray[np.bool_]:
    """Foreground where alpha ≥ 0.5 (128 of 255), for ground truth and predictions alike."""
    return alpha >= 128


def edge_band(gt_fg: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """Pixels within ``radius`` px of the ground-truth boundary: the dilated mask minus the
    eroded one. Refinement changes only these pixels, so whole-image MAE dilutes them."""
    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    fg = gt_fg.astype(np.uint8)
    return (cv2.dilate(fg, kernel) > 0) & ~(cv2.erode(fg, kernel) > 0)


@dataclass
class SetScores:
    """Accumulates one tool's scores on one eval set, image by image."""

    edge_radius: int = 8
    stems: list[str] = field(default_factory=list)
    _mae: sod.MAE = field(default_factory=sod.MAE)
    _sm: sod.Smeasure = field(default_factory=sod.Smeasure)
    _fm: sod.FmeasureV2 = field(init=False)
    _iou: sod.IOUHandler = field(init=False)
    _own: dict[str, list[float]] = field(init=False)

    def __post_init__(self) -> None:
        # with_binary thresholds at pred > 0.5, the same cut as binarise().
        self._iou = sod.IOUHandler(with_dynamic=False, with_adaptive=False, with_binary=True)
        fm = sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=0.3)
        self._fm = sod.FmeasureV2({"fm": fm, "iou": self._iou})
        self._own = {"edge_mae": [], "sad": [], "mse": []}

    def add(self, stem: str, pred: U8, gt: U8) -> None:
        if pred.shape != gt.shape:
            raise ValueError(f"matte is {pred.shape[::-1]} but ground truth is {gt.shape[::-1]}")
        p = pred.astype(np.float64) / 255.0
        g = gt.astype(np.float64) / 255.0
        g_fg = binarise(gt)
        self._mae.step(p, g_fg, normalize=False)
        self._sm.step(p, g_fg, normalize=False)
        self._fm.step(p, g_fg, normalize=False)
        err = np.abs(p - g)  # against the stored ground truth: soft where it is soft
        band = edge_band(g_fg, self.edge_radius)
        self._own["edge_mae"].append(float(err[band].mean()) if band.any() else math.nan)
        self._own["sad"].append(float(err.sum()) / 1000.0)
        self._own["mse"].append(float(np.mean(err * err)))
        self.stems.append(stem)

    def __len__(self) -> int:
        return len(self.stems)

    def per_image(self, key: str) -> list[float]:
        """One value per added image, in the order added (empty for max F)."""
        match key:
            case "iou":
                return [float(v) for v in self._iou.binary_results]
            case "mae":
                return [float(v) for v in self._mae.maes]
            case "s":
                return [float(v) for v in self._sm.sms]
            case "max_f":
                return []
            case _:
                return self._own[key]

    def summary(self) -> dict[str, float]:
        if not self.stems:
            return {m.key: math.nan for m in METRICS}
        curve = self._fm.get_results()["fm"]["dynamic"]
        out = {"max_f": float(np.max(curve))}
        for m in METRICS:
            if m.per_image:
                with warnings.catch_warnings():
                    # An all-background set has no boundary: nanmean warns, NaN is the answer.
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out[m.key] = float(np.nanmean(self.per_image(m.key)))
        return out


def wins(ours: list[float], theirs: list[float], higher_is_better: bool) -> tuple[int, int]:
    """Images where ours is strictly better, and strictly worse (NaNs skipped)."""
    better = worse = 0
    for a, b in zip(ours, theirs, strict=True):
        if math.isnan(a) or math.isnan(b) or a == b:
            continue
        if (a > b) == higher_is_better:
            better += 1
        else:
            worse += 1
    return better, worse
