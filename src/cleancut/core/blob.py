"""A photo as a model's input tensor: resized to the model's grid and normalised, NCHW float32
(the resize itself is ``resample``'s)."""

from __future__ import annotations

import cv2
import numpy as np

from cleancut.core import resample
from cleancut.core.models import ModelSpec
from cleancut.core.resample import Kernel
from cleancut.core.types import F32, U8


def to_blob(spec: ModelSpec, rgb: U8) -> F32:
    w, h = spec.input_size
    # Area averaging uses every source pixel when shrinking a large photo (no aliasing).
    # Enlarging a small photo with Lanczos keeps its edges crisp for the model: bilinear
    # fed it a softer image and cost up to 9 % edge-band error on the hair set
    # (docs/benchmarks.md). A photo with more pixels than the grid but one side shorter
    # (a panorama) is averaged along the long side and enlarged along the short one.
    src = halve(rgb, (w, h))
    kernels: tuple[Kernel, Kernel]
    if rgb.shape[0] * rgb.shape[1] <= w * h:
        kernels = ("lanczos", "lanczos")
    else:
        kernels = (_shrinking(src.shape[0], h), _shrinking(src.shape[1], w))
    return resample.to_planes(src, (w, h), kernels, spec.mean, spec.std)


def _shrinking(src: int, dst: int) -> Kernel:
    return "area" if src >= dst else "lanczos"


def halve(rgb: U8, size: tuple[int, int]) -> U8:
    """``rgb`` averaged over 2×2 blocks for as long as it stays at least ``size`` (w, h).

    OpenCV halves by its fast whole-number path (about 4 ms at 12 MP), which leaves the
    separable passes of ``resample`` a quarter of the pixels: a 12 MP photo took 46 ms of
    CPU to the tensor without halving, 35 ms with it (2026-12-08). The two differ by a
    quarter of a level on average. An odd last row or column is dropped.
    """
    w, h = size
    while rgb.shape[1] >= 2 * w and rgb.shape[0] >= 2 * h:
        hh, ww = rgb.shape[0] // 2, rgb.shape[1] // 2
        rgb = np.asarray(
            cv2.resize(rgb[: 2 * hh, : 2 * ww], (ww, hh), interpolation=cv2.INTER_AREA), np.uint8
        )
    return rgb
