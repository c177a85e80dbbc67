"""A photo resized straight into the model's normalised planar tensor, as separable passes.

OpenCV's resize is fast for whole-number factors and for bilinear, but the two resizes the
model input needs are its slow paths: area averaging by a fractional factor (any photo
larger than the model's grid, after ``blob.halve``) and Lanczos enlargement (any smaller
photo). On one core they took 27 ms for a 4 MP photo and 39 ms for a 1 MP one, which adds
up to a tenth of a server's CPU besides inference (docs/benchmarks.md).

Both are separable: each output pixel is a weighted sum over a few rows, then over a few
columns. Here each pass is a loop along contiguous memory (a weighted sum of whole rows,
which vectorises), and the column pass runs as a row pass on the transposed rows, a strip
of 64 output rows at a time so that the intermediates stay in cache. The
weights are OpenCV's: area coverage when shrinking, its normalised 8-tap Lanczos kernel
with pixel centres aligned and edges replicated otherwise. The values stay in float from
the photo's bytes to the tensor (OpenCV rounds the resized photo to bytes and computes
Lanczos in 11-bit fixed point), so the tensor differs from the OpenCV route by a fraction
of a level; Lanczos overshoot is clipped to 0..255 as OpenCV's bytes are.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import cv2
import numpy as np
from numba import njit

from cleancut.core.parallel import map_threads
from cleancut.core.types import F32, U8

Kernel = Literal["area", "lanczos"]
#: Output rows per pass: the strip's buffers (a few hundred KB at 12 MP) stay in cache.
STRIP_ROWS = 64


def taps(src: int, dst: int, kernel: Kernel) -> tuple[Any, F32]:
    """For each of ``dst`` output positions along an axis of ``src`` pixels: the source
    indices it reads (dst × n, int64) and their weights (dst × n float32, summing to 1).
    Rows of fewer taps are padded with weight 0 on a valid index."""
    if kernel == "area":
        return _area_taps(src, dst)
    return _lanczos_taps(src, dst)


def _area_taps(src: int, dst: int) -> tuple[Any, F32]:
    if dst > src:
        raise ValueError(f"area averaging shrinks: {src} → {dst}")
    scale = src / dst
    lo = np.arange(dst, dtype=np.float64) * scale
    hi = np.minimum(lo + scale, src)
    first = np.floor(lo)
    j = first[:, None] + np.arange(math.ceil(scale) + 1)[None, :]
    # Each source pixel weighs what it covers of the output pixel's span; taps past the
    # span cover nothing.
    cover = np.clip(np.minimum(hi[:, None], j + 1) - np.maximum(lo[:, None], j), 0.0, None)
    weight = cover / cover.sum(axis=1, keepdims=True)
    idx = np.minimum(j, src - 1).astype(np.int64)
    return idx, weight.astype(np.float32)


def _lanczos_taps(src: int, dst: int) -> tuple[Any, F32]:
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    first = np.floor(pos)
    frac = pos - first
    offsets = np.arange(-3, 5)
    # sinc(d)·sinc(d/4) at the eight distances, normalised to sum 1 as OpenCV's table is;
    # at frac = 0 it is exactly the pixel itself.
    d = frac[:, None] - offsets[None, :]
    weight = np.sinc(d) * np.sinc(d / 4.0)
    # sinc is zero at whole distances, where np.sinc leaves 1e-17: make those taps skippable
    weight[np.abs(weight) < 1e-9] = 0.0
    weight /= weight.sum(axis=1, keepdims=True)
    idx = np.clip(first[:, None].astype(np.int64) + offsets[None, :], 0, src - 1)
    return idx, weight.astype(np.float32)


def to_planes(
    rgb: U8,
    size: tuple[int, int],
    kernels: tuple[Kernel, Kernel],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> F32:
    """``rgb`` (H×W×3 uint8) resized to ``size`` (w, h) with ``kernels`` (along y, along x)
    and normalised as (x − mean) / std per channel: a 1×3×h×w float32 tensor. Area
    averaging only shrinks."""
    w, h = size
    src_h, src_w = rgb.shape[:2]
    y_idx, y_w = taps(src_h, h, kernels[0])
    x_idx, x_w = taps(src_w, w, kernels[1])
    clip = "lanczos" in kernels
    out = np.empty((1, 3, h, w), np.float32)
    # Into arrays of our own: OpenCV's freshly allocated outputs cost more than the work
    # (cv2.split alone took 20 ms at 4 MP, against 1 ms into these).
    planes = [np.empty((src_h, src_w), np.uint8) for _ in range(3)]
    cv2.split(rgb, planes)
    strips = [(i, min(h, i + STRIP_ROWS)) for i in range(0, h, STRIP_ROWS)]

    def one(c: int) -> None:
        # A strip of output rows at a time, through buffers that stay in the core's cache
        # and are reused: whole-plane intermediates (11 MB each at 4 MP) cost more in
        # first-touch page faults and memory traffic than the passes themselves.
        rows = np.empty((STRIP_ROWS, src_w), np.float32)
        turned = np.empty((src_w, STRIP_ROWS), np.float32)
        cols = np.empty((w, STRIP_ROWS), np.float32)
        for top, bottom in strips:
            n = bottom - top
            if n < STRIP_ROWS:  # the last strip: OpenCV's transpose wants whole arrays
                turned, cols = np.empty((src_w, n), np.float32), np.empty((w, n), np.float32)
            _rows(planes[c], y_idx[top:bottom], y_w[top:bottom], rows[:n])
            # The column pass is a row pass over the transposed strip: contiguous loads.
            cv2.transpose(rows[:n], dst=turned)
            _rows(turned, x_idx, x_w, cols)
            _normalise(cols, np.float32(mean[c]), np.float32(1.0 / std[c]), clip)
            cv2.transpose(cols, dst=out[0, c, top:bottom])

    map_threads(one, range(3), name="resample")
    return out


@njit(cache=True, nogil=True)
def _rows(src: Any, idx: Any, weight: Any, out: Any) -> None:
    n = idx.shape[1]
    length = src.shape[1]
    for i in range(out.shape[0]):
        row = out[i]
        j = idx[i, 0]
        w0 = weight[i, 0]
        for x in range(length):
            row[x] = w0 * np.float32(src[j, x])
        for k in range(1, n):
            wk = weight[i, k]
            if wk == 0.0:
                continue
            j = idx[i, k]
            for x in range(length):
                row[x] += wk * np.float32(src[j, x])


@njit(cache=True, nogil=True)
def _normalise(x: Any, mean: Any, inv_std: Any, clip: bool) -> None:
    top = np.float32(255.0)
    zero = np.float32(0.0)
    for i in range(x.shape[0]):
        row = x[i]
        for j in range(row.shape[0]):
            v = row[j]
            if clip:
                v = min(max(v, zero), top)
            row[j] = (v - mean) * inv_std
