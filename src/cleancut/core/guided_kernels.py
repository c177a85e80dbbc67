"""The colour guided filter's linear model as one compiled loop (numba), at chosen pixels.

``refine_ops.guided_coefficients`` builds the model from about forty whole-array box
filters and elementwise steps over every pixel. Only a thin band needs it (the snap of
an outline: per tile at full resolution, or on a large photo shrunk to the model's grid),
and on small tiles Python's per-call overhead dominates those steps; this loop visits only
the pixels that need the model, in one pass without the GIL. The window sums are float64, so the
covariances do not lose digits to cancellation; results agree with the numpy
formulation to float32 rounding. Borders reflect as OpenCV's ``BORDER_REFLECT`` does.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

from cleancut.core.refine_ops import solve_covariance
from cleancut.core.types import F32, U8

#: The numpy formulation's closed-form solve, compiled for one pixel's scalars.
_solve = njit(cache=True, nogil=True, inline="always")(solve_covariance)

#: Rows per strip: the per-pixel models of a strip (and of its 2r-row margin) are kept in
#: a small buffer instead of a full-size array.
_STRIP = 32


def guided_coefficients_at(guide: U8, src: U8, r: int, eps: float, need: NDArray[np.bool_]) -> F32:
    """``refine_ops.guided_coefficients(guide / 255, src / 255, r, eps)`` at the ``need``
    pixels (H×W×4: three colour weights and an offset); zero elsewhere."""
    h, w = need.shape
    if guide.shape != (h, w, 3) or src.shape != (h, w):
        raise ValueError(f"shapes differ: guide {guide.shape}, src {src.shape}, need {need.shape}")
    out = np.zeros((h, w, 4), np.float32)
    if r < 1 or not need.any():
        return out
    # The averaged model at a pixel reads the per-pixel models of its whole window.
    reach = cv2.dilate(need.view(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    _coefficients(guide, src, int(r), float(eps), need.view(np.uint8), reach, out)
    return out


@njit(cache=True, nogil=True, inline="always")
def _reflect(i: Any, n: Any) -> Any:
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i - 1 if i < 0 else 2 * n - 1 - i
    return i


@njit(cache=True, nogil=True, inline="always")
def _model(guide: Any, src: Any, y: Any, x: Any, r: Any, eps: Any) -> Any:
    """The un-averaged linear model (a0, a1, a2, b) of the window centred on (y, x)."""
    h, w = src.shape
    inv_n = 1.0 / ((2 * r + 1) * (2 * r + 1))
    u = 1.0 / 255.0
    s0 = s1 = s2 = sp = p0 = p1 = p2 = 0.0
    q00 = q01 = q02 = q11 = q12 = q22 = 0.0
    for dy in range(-r, r + 1):
        ry = _reflect(y + dy, h)
        for dx in range(-r, r + 1):
            rx = _reflect(x + dx, w)
            i0 = guide[ry, rx, 0] * u
            i1 = guide[ry, rx, 1] * u
            i2 = guide[ry, rx, 2] * u
            p = src[ry, rx] * u
            s0 += i0
            s1 += i1
            s2 += i2
            sp += p
            p0 += i0 * p
            p1 += i1 * p
            p2 += i2 * p
            q00 += i0 * i0
            q01 += i0 * i1
            q02 += i0 * i2
            q11 += i1 * i1
            q12 += i1 * i2
            q22 += i2 * i2
    m0, m1, m2, mp = s0 * inv_n, s1 * inv_n, s2 * inv_n, sp * inv_n
    c0 = p0 * inv_n - m0 * mp
    c1 = p1 * inv_n - m1 * mp
    c2 = p2 * inv_n - m2 * mp
    rr = q00 * inv_n - m0 * m0 + eps
    rg = q01 * inv_n - m0 * m1
    rb = q02 * inv_n - m0 * m2
    gg = q11 * inv_n - m1 * m1 + eps
    gb = q12 * inv_n - m1 * m2
    bb = q22 * inv_n - m2 * m2 + eps
    a0, a1, a2 = _solve(rr, rg, rb, gg, gb, bb, c0, c1, c2)
    return a0, a1, a2, mp - a0 * m0 - a1 * m1 - a2 * m2


@njit(cache=True, nogil=True)
def _coefficients(guide: Any, src: Any, r: Any, eps: Any, need: Any, reach: Any, out: Any) -> None:
    h, w = need.shape
    inv_n = 1.0 / ((2 * r + 1) * (2 * r + 1))
    buf = np.zeros((_STRIP + 2 * r, w, 4), np.float64)
    for y0 in range(0, h, _STRIP):
        y1 = min(h, y0 + _STRIP)
        if not need[y0:y1].any():
            continue
        top = y0 - r
        for yy in range(max(0, top), min(h, y1 + r)):
            for x in range(w):
                if reach[yy, x] != 0:
                    buf[yy - top, x, :] = _model(guide, src, yy, x, r, eps)
        for y in range(y0, y1):
            for x in range(w):
                if need[y, x] == 0:
                    continue
                t0 = t1 = t2 = t3 = 0.0
                for dy in range(-r, r + 1):
                    row = _reflect(y + dy, h) - top
                    for dx in range(-r, r + 1):
                        rx = _reflect(x + dx, w)
                        t0 += buf[row, rx, 0]
                        t1 += buf[row, rx, 1]
                        t2 += buf[row, rx, 2]
                        t3 += buf[row, rx, 3]
                out[y, x, 0] = t0 * inv_n
                out[y, x, 1] = t1 * inv_n
                out[y, x, 2] = t2 * inv_n
                out[y, x, 3] = t3 * inv_n
