"""Compiled per-pixel loops of composition (numba): one pass where OpenCV needs two.

Compiled on first use and cached on disk next to this module, like ``refine_kernels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from cleancut.core.types import U8


def cutout(rgb: U8, alpha: U8) -> U8:
    """Straight RGBA from ``rgb`` and ``alpha``, RGB 0 where alpha is 0."""
    h, w = alpha.shape
    out = np.empty((h, w, 4), np.uint8)
    _cutout(rgb, alpha, out)
    return out


@njit(cache=True, nogil=True)
def _cutout(rgb: Any, alpha: Any, out: Any) -> None:
    h, w = alpha.shape
    for y in range(h):
        for x in range(w):
            a = alpha[y, x]
            keep = np.uint8(0) - np.uint8(a != 0)  # 0xFF or 0: no branch in the loop
            out[y, x, 0] = rgb[y, x, 0] & keep
            out[y, x, 1] = rgb[y, x, 1] & keep
            out[y, x, 2] = rgb[y, x, 2] & keep
            out[y, x, 3] = a
