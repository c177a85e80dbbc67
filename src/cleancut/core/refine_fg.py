"""Foreground colour estimation: multi-level foreground estimation after Germer, Uelwer,
Conrad and Harmeling, "Fast Multi-Level Foreground Estimation" (ICPR 2020).

For every pixel it finds a foreground colour F and a background colour B such that
``α·F + (1−α)·B`` reproduces the photo while both vary smoothly except across edges of the
matte. The solution is built coarse to fine: at one pixel the whole image is a single
colour; each finer level starts from the previous one and relaxes a few times. Colours thus
travel across large regions at the cheap coarse levels, and the finest level only polishes.

Each relaxation solves, at every pixel, the 2×2 least-squares system in (F, B) given the
neighbours' current values (Jacobi: all pixels at once, which vectorises; the paper sweeps
Gauss-Seidel). Levels bigger than a tile are relaxed tile by tile with a halo one pixel
wider than the number of relaxations, which reproduces the untiled result exactly because
information moves one pixel per relaxation.

Photos larger than ``WORK_SIDE`` are solved at that size (the model's matte carries no
finer detail: it is upsampled from 1024²) and brought to full resolution by the
least-squares correction ``F += α·(I − α·F − (1−α)·B)``, which makes every full-resolution
pixel satisfy the compositing equation as closely as one step can (Forte and Pitié use the
same correction in their blur-fusion estimator). That keeps 12 MP photos to about a second.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from cleancut.core.refine_ops import TILE, as_f32, sample, tiles, to_u8, to_unit
from cleancut.core.types import F32, U8

#: Smoothness everywhere (ε) and the extra coupling where the matte changes (ω), as in the
#: paper's cost ``Σ (ε + ω·|∇α|)·(|∇F|² + |∇B|²)``.
EPS = 5e-3
OMEGA = 0.1
SMALL = 32  # levels up to this size get many relaxations (they are nearly free)
ITERS_SMALL = 10
ITERS_BIG = 2
WORK_SIDE = 1024

I64 = NDArray[np.int64]
_SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def estimate(rgb: U8, alpha: U8, tile: int = TILE, work_side: int = WORK_SIDE) -> U8:
    """F for every pixel with 0 < α < 255; opaque and fully transparent pixels keep the
    photo's own colour (the former is already right, the latter is never seen)."""
    h, w = alpha.shape
    out = rgb.copy()
    soft = np.asarray(cv2.inRange(alpha, 1, 254), dtype=bool)
    if not soft.any():
        return out
    if max(h, w) <= work_side:
        _solve_full(rgb, alpha, soft, out, tile)
        return out
    k = max(h, w) / work_side
    size = (max(1, round(w / k)), max(1, round(h / k)))
    small_rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    small_a = np.asarray(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    sh, sw = small_a.shape
    fb = _pyramid(small_rgb, small_a, _sizes(sh, sw), tile)
    for t in tiles(soft, 0, tile):
        fb_t = sample(fb, (h, w), t)
        img = to_unit(rgb[t.read])
        a = to_unit(alpha[t.read])[..., None]
        f, b = fb_t[..., :3], fb_t[..., 3:]
        f = f + a * (img - a * f - (1.0 - a) * b)
        _write(out, alpha, t.write, f)
    return out


def _solve_full(rgb: U8, alpha: U8, soft: NDArray[np.bool_], out: U8, tile: int) -> None:
    h, w = alpha.shape
    sizes = _sizes(h, w)
    fb = _pyramid(rgb, alpha, sizes[:-1], tile)
    prev = sizes[-2]
    iters = _iterations((h, w))
    # Only soft pixels' F is used, and a relaxation reaches one pixel per step, so the
    # finest level visits only tiles around soft pixels.
    for t in tiles(soft, iters + 1, tile):
        py, px = t.read
        init = fb[_index(h, prev[0])[py]][:, _index(w, prev[1])[px]]
        crop = _relax(rgb[py, px], alpha[py, px], init, iters)
        _write(out, alpha, t.write, crop[t.core][..., :3])


def _write(out: U8, alpha: U8, where: tuple[slice, slice], f: F32) -> None:
    keep = (alpha[where] > 0) & (alpha[where] < 255)
    region = out[where]
    region[keep] = to_u8(np.clip(f, 0.0, 1.0))[keep]


def _sizes(h: int, w: int) -> list[tuple[int, int]]:
    """Level sizes from 1×1 up to h×w, about doubling each time (as in the paper)."""
    n = max(1, math.ceil(math.log2(max(h, w))))
    return [(max(1, round(h ** (lvl / n))), max(1, round(w ** (lvl / n)))) for lvl in range(n + 1)]


def _pyramid(rgb: U8, alpha: U8, sizes: list[tuple[int, int]], tile: int) -> F32:
    """Packed [F, B] (H×W×6) at the last of ``sizes``, solved coarse to fine."""
    h, w = alpha.shape
    mean = rgb.reshape(-1, 3).mean(axis=0) / 255.0
    fb = np.empty((1, 1, 6), dtype=np.float32)
    fb[..., :3] = mean
    fb[..., 3:] = mean
    prev = (1, 1)
    for size in sizes:
        ys, xs = _index(size[0], h), _index(size[1], w)
        init = fb[_index(size[0], prev[0])][:, _index(size[1], prev[1])]
        fb = _level(rgb, alpha, ys, xs, init, _iterations(size), tile)
        prev = size
    return fb


def _iterations(size: tuple[int, int]) -> int:
    return ITERS_SMALL if max(size) <= SMALL else ITERS_BIG


def _index(n_dst: int, n_src: int) -> I64:
    """Nearest-neighbour source index for each destination pixel (the paper resizes with
    nearest neighbours; one shared rule keeps tiles and whole images in step)."""
    idx: I64 = np.minimum((np.arange(n_dst, dtype=np.int64) * n_src) // n_dst, n_src - 1)
    return idx


def _level(rgb: U8, alpha: U8, ys: I64, xs: I64, init: F32, iters: int, tile: int) -> F32:
    """Relax one whole level, its image and matte sampled from ``rgb``/``alpha`` at ys, xs."""
    # Fancy indexing can hand back a transposed layout, which OpenCV reads ~8x slower.
    out = np.empty(init.shape, dtype=np.float32)
    everywhere = np.ones((len(ys), len(xs)), dtype=bool)
    for t in tiles(everywhere, iters + 1, tile):
        py, px = t.read
        sub_y, sub_x = ys[py], xs[px]
        crop = _relax(rgb[sub_y][:, sub_x], alpha[sub_y][:, sub_x], init[py, px], iters)
        out[t.write] = crop[t.core]
    return out


def _relax(rgb: U8, alpha: U8, fb: F32, iters: int) -> F32:
    """``iters`` Jacobi relaxations of packed [F, B] (H×W×6) on one crop."""
    img = to_unit(rgb)
    a = to_unit(alpha)
    h, w = a.shape
    ap = cv2.copyMakeBorder(a, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    weights = [
        np.float32(EPS)
        + np.float32(OMEGA) * np.abs(a - ap[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w])
        for dy, dx in _SHIFTS
    ]
    total = weights[0] + weights[1] + weights[2] + weights[3]
    # OpenCV's per-element ops need equal channel counts, and are several times faster than
    # numpy broadcasting here, so the weights are widened to the 6 packed channels once.
    wide = [cv2.merge([wt] * 6) for wt in weights]
    # Per-pixel normal equations [[α²+W, α(1−α)], [α(1−α), (1−α)²+W]]·[F, B] = rhs.
    m00 = (a * a + total)[..., None]
    m01 = (a * (1.0 - a))[..., None]
    m11 = ((1.0 - a) * (1.0 - a) + total)[..., None]
    inv_det = 1.0 / (m00 * m11 - m01 * m01)
    data_f = a[..., None] * img
    data_b = (1.0 - a)[..., None] * img
    cur = np.ascontiguousarray(fb, dtype=np.float32)
    for _ in range(iters):
        pad = cv2.copyMakeBorder(cur, 1, 1, 1, 1, cv2.BORDER_REPLICATE).reshape(h + 2, w + 2, 6)
        acc: F32 | None = None
        for wt, (dy, dx) in zip(wide, _SHIFTS, strict=True):
            term = as_f32(cv2.multiply(wt, pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]))
            acc = term if acc is None else as_f32(cv2.add(acc, term))
        assert acc is not None
        acc = acc.reshape(h, w, 6)
        r0 = data_f + acc[..., :3]
        r1 = data_b + acc[..., 3:]
        nxt = np.empty_like(cur)
        nxt[..., :3] = (m11 * r0 - m01 * r1) * inv_det
        nxt[..., 3:] = (m00 * r1 - m01 * r0) * inv_det
        np.clip(nxt, 0.0, 1.0, out=nxt)
        cur = nxt
    return cur
