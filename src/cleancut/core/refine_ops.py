"""Building blocks shared by matte refinement and foreground estimation: box statistics,
the colour guided filter, tiling and resampling of coarse fields.

Everything works on float32 arrays in [0, 1]; uint8 conversion happens at the edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cleancut.core.types import F32, U8

#: Default tile side. Big enough that Python overhead per tile is negligible, small enough
#: that a tile's few dozen float32 temporaries stay in the tens of megabytes.
TILE = 128


def as_f32(x: object) -> F32:
    return np.asarray(x, dtype=np.float32)


def to_unit(x: U8) -> F32:
    return as_f32(x) * np.float32(1.0 / 255.0)


def to_u8(x: F32) -> U8:
    out: U8 = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def box(x: F32, r: int) -> F32:
    """Mean over a (2r+1)² window. OpenCV's box filter costs the same at any radius."""
    if r <= 0:
        return x
    k = 2 * r + 1
    return as_f32(cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT))


def guided_coefficients(guide: F32, src: F32, r: int, eps: float) -> F32:
    """The guided filter's window-averaged linear model, H×W×4: ``[..., :3]`` multiplies
    the guide's RGB, ``[..., 3]`` is the offset. The reference formulation: refinement runs
    ``guided_kernels.guided_coefficients_at``, which the tests hold to it.

    The 3×3 colour covariance is inverted per pixel in closed form (adjugate / determinant),
    which keeps the whole filter to box filters and elementwise numpy. The model varies
    smoothly, so it may be computed on a shrunk guide and applied at full resolution (He
    and Sun's fast guided filter).
    """
    mi = [box(guide[..., c], r) for c in range(3)]
    mp = box(src, r)
    cov_ip = [box(guide[..., c] * src, r) - mi[c] * mp for c in range(3)]
    e = np.float32(eps)
    rr = box(guide[..., 0] * guide[..., 0], r) - mi[0] * mi[0] + e
    rg = box(guide[..., 0] * guide[..., 1], r) - mi[0] * mi[1]
    rb = box(guide[..., 0] * guide[..., 2], r) - mi[0] * mi[2]
    gg = box(guide[..., 1] * guide[..., 1], r) - mi[1] * mi[1] + e
    gb = box(guide[..., 1] * guide[..., 2], r) - mi[1] * mi[2]
    bb = box(guide[..., 2] * guide[..., 2], r) - mi[2] * mi[2] + e
    a0, a1, a2 = solve_covariance(rr, rg, rb, gg, gb, bb, *cov_ip)
    b = mp - a0 * mi[0] - a1 * mi[1] - a2 * mi[2]
    out = np.empty((*src.shape[:2], 4), dtype=np.float32)
    for c, plane in enumerate((a0, a1, a2, b)):
        out[..., c] = box(as_f32(plane), r)
    return out


def solve_covariance(
    rr: Any, rg: Any, rb: Any, gg: Any, gb: Any, bb: Any, c0: Any, c1: Any, c2: Any
) -> tuple[Any, Any, Any]:
    """Σ⁻¹·c for the symmetric 3×3 colour covariance Σ (its six entries) and the colour–
    source covariance c, in closed form (adjugate / determinant). Plain arithmetic, so it
    works elementwise on arrays and, compiled by ``guided_kernels``, on scalars."""
    i00 = gg * bb - gb * gb
    i01 = gb * rb - rg * bb
    i02 = rg * gb - gg * rb
    i11 = rr * bb - rb * rb
    i12 = rb * rg - rr * gb
    i22 = rr * gg - rg * rg
    inv_det = 1.0 / (rr * i00 + rg * i01 + rb * i02)
    a0 = (i00 * c0 + i01 * c1 + i02 * c2) * inv_det
    a1 = (i01 * c0 + i11 * c1 + i12 * c2) * inv_det
    a2 = (i02 * c0 + i12 * c1 + i22 * c2) * inv_det
    return a0, a1, a2


@dataclass(frozen=True)
class Tile:
    """A core rectangle to write, inside a padded rectangle to read (image coordinates)."""

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int

    @property
    def read(self) -> tuple[slice, slice]:
        return slice(self.py0, self.py1), slice(self.px0, self.px1)

    @property
    def write(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def core(self) -> tuple[slice, slice]:
        """The core's position inside the padded crop."""
        return (
            slice(self.y0 - self.py0, self.y1 - self.py0),
            slice(self.x0 - self.px0, self.x1 - self.px0),
        )


def grid(shape: tuple[int, ...], halo: int, size: int = TILE) -> Iterator[Tile]:
    """Every tile of ``size``² covering an image of ``shape``, each padded by ``halo``
    (clipped at the image border)."""
    h, w = shape[0], shape[1]
    size = max(8, size)
    for y0 in range(0, h, size):
        y1 = min(h, y0 + size)
        for x0 in range(0, w, size):
            x1 = min(w, x0 + size)
            yield Tile(
                y0,
                y1,
                x0,
                x1,
                max(0, y0 - halo),
                min(h, y1 + halo),
                max(0, x0 - halo),
                min(w, x1 + halo),
            )


def tiles(active: np.ndarray, halo: int, size: int = TILE) -> Iterator[Tile]:
    """The tiles of ``grid`` whose core holds at least one ``active`` pixel. Work is done
    only where something can change, and the padding makes each core's result identical
    to filtering the whole image as long as ``halo`` covers the filters' reach."""
    for t in grid(active.shape, halo, size):
        if active[t.write].any():
            yield t


def sample(field: F32, full_shape: tuple[int, ...], tile: Tile, scale: int | None = None) -> F32:
    """Bilinear samples of a coarse ``field`` (covering the whole image at lower resolution)
    at the full-resolution pixels of ``tile``'s padded rectangle: the values a full-size
    ``cv2.resize`` would give there, without ever allocating the full-size field. ``scale``
    says that each field pixel is the mean of a scale×scale block (the field may then
    overhang the image); without it the field spans the image exactly."""
    fh, fw = field.shape[:2]
    h, w = full_shape[0], full_shape[1]
    sx, sy = (fw / w, fh / h) if scale is None else (1.0 / scale, 1.0 / scale)
    m = np.array(
        [[sx, 0.0, (tile.px0 + 0.5) * sx - 0.5], [0.0, sy, (tile.py0 + 0.5) * sy - 0.5]],
        dtype=np.float64,
    )
    out = cv2.warpAffine(
        np.ascontiguousarray(field),
        m,
        (tile.px1 - tile.px0, tile.py1 - tile.py0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return as_f32(out)
