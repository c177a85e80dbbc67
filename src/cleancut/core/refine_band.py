"""One refinement pass over the uncertain band around the matte's edge.

The pass combines two estimates of alpha inside the band:

* **snap**: the colour guided filter applied to the *binarised* matte. Where the subject
  meets the background along a colour edge, the filter's local linear colour model turns
  the model's soft ramp (it sees the photo at 1024² or less) into a step exactly at the
  image edge. This is what solid outlines need.
* **local colour model**: each band pixel's colour is projected onto the line between the
  mean foreground and mean background colour sampled just outside the band (weighted local
  means, widening the window until there are samples). The projection gives a fractional
  alpha where hair, fur or a net lets the background show through. It is trusted in
  proportion to how well the two colours separate relative to their own spread and how
  close the pixel lies to the line, so similar or textured colours change nothing.

A box-filtered "mixedness" (how many nearby pixels the colour model calls partial) chooses
between them: snap where pixels are pure foreground or background colour, the model's own
soft alpha (optionally blended with the colour model's) where they are mixed. Changes fade
in over a couple of pixels from the band's edges, so nothing outside the band moves and no
seam appears; definite foreground, definite background and holes are left as they were.

A **confidence gate** then hands the model's own alpha back wherever the model is unsure
over the whole neighbourhood: along a real outline its matte ramps steeply from 0 to 1
within the band, but where it could not decide (a plateau near 0.5, typical of hair, fur
and translucent parts it half-sees) snapping would turn its doubt into a hard, possibly
wrong, edge. Without the gate the passes lowered the edge error but raised the squared
error and the S-measure gap on the hair set (docs/benchmarks.md).

Colour statistics are computed on a grid no larger than ``STATS_SIDE`` (they are means
over windows of 1 % of the image side, so nothing is lost) and sampled back per tile; all
full-resolution work, the distance to the contour included, happens tile by tile, only on
tiles that touch the band, with the tiles shared among threads. The snap's guided-filter
model is computed only at the pixels that need it (``guided_kernels``): per tile at full
resolution for smaller photos, and for photos at least twice the model's 1024² grid on
the photo shrunk to about that grid, then applied at full resolution (``_snap_field``).
The per-pixel loops live in ``refine_kernels`` and ``guided_kernels``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from cleancut.core import refine_kernels as kernels
from cleancut.core.guided_kernels import guided_coefficients_at
from cleancut.core.parallel import map_threads
from cleancut.core.refine_ops import (
    TILE,
    Tile,
    as_f32,
    box,
    grid,
)
from cleancut.core.types import F32, U8

#: Block side of the map that tells which tiles the contour may cross.
_SIDE_BLOCK = 16
#: Long side of the image the colour statistics are computed on.
STATS_SIDE = 256
#: Matte values counted as certain when sampling foreground and background colours.
SURE_FG = 230
SURE_BG = 25
#: Colour separation (in 0..1 RGB units) below which the colour model is not trusted.
SIGMA = 0.1
#: The colour model's alpha counts as "mixed" between these values.
MIXED = (0.15, 0.85)


@dataclass(frozen=True)
class PassParams:
    #: half-width of the band as a fraction of the long side (at least 2 px)
    band: float = 0.005
    #: guided-filter radius and regularisation of the snap, radius in pixels at ≤1024 px
    snap_radius: int = 1
    snap_eps: float = 1e-4
    #: weight of the local colour spread against the colour separation, for the colour
    #: model's alpha (``kappa``) and for the mixedness gate (``gate_kappa``)
    kappa: float = 16.0
    gate_kappa: float = 2.0
    #: mixedness (fraction of nearby mixed pixels) that starts / completes the switch from
    #: snap to soft alpha
    gate: tuple[float, float] = (0.2, 0.5)
    #: in mixed zones: 0 keeps the model's alpha, 1 takes the colour model's where trusted
    use_colour: float = 0.5
    #: the model's local confidence (mean |2α − 1| over twice the band's half-width) below which
    #: the pass keeps the model's alpha, and above which it applies in full; (0, 0) is off
    confidence: tuple[float, float] = (0.45, 0.75)
    #: the confidence window's half-width, in band half-widths
    confidence_window: float = 2.0


@dataclass(frozen=True)
class _Geometry:
    """Radii for one image: band-related ones follow the matte's own resolution, which
    is never finer than the model's 1024² grid, so they grow with images beyond 1024 px."""

    band: int
    snap: int
    gate: int
    taper: float
    window: int
    sure: int
    #: integer shrink of the snap's guided filter (1: full resolution) and its radius there
    coarse: int
    coarse_snap: int

    @classmethod
    def of(cls, shape: tuple[int, ...], p: PassParams) -> _Geometry:
        side = max(shape[0], shape[1])
        grid = max(1.0, side / 1024.0)
        band = max(2, round(p.band * side))
        return cls(
            band=band,
            snap=max(1, round(p.snap_radius * grid)),
            gate=max(1, round(2 * grid)),
            taper=2.0 * grid,
            window=max(3, round(0.01 * side)),
            sure=max(1, round(p.confidence_window * band)),
            coarse=int(grid),
            coarse_snap=max(1, round(p.snap_radius * grid / int(grid))),
        )

    @property
    def halo(self) -> int:
        """Padding of a full-resolution tile: the snap's reach (when it runs there) plus
        the mixedness box."""
        return self.gate + 2 + (2 * self.snap if self.coarse == 1 else 0)


def refine_pass(
    rgb: U8, alpha: U8, p: PassParams, tile: int = TILE, threads: int | None = None
) -> U8:
    fg = alpha >= 128
    if fg.all() or not fg.any():
        return alpha.copy()
    g = _Geometry.of(alpha.shape, p)
    edges = _edge_tiles(fg, g.band, g.halo, tile, threads)
    band = np.zeros(alpha.shape, dtype=bool)
    for t, dist in edges:
        band[t.write] = dist <= g.band
    c0, c1 = p.confidence
    snap_model = None if g.coarse == 1 else _snap_field(rgb, alpha, band, p, g)
    stats = _colour_stats(rgb, alpha, band, g.window, threads)
    gated = c1 > c0
    del band
    out = alpha.copy()

    def one(edge: tuple[Tile, F32]) -> None:
        t, dist = edge
        soft, hard, zone = _tile(rgb, alpha, stats, snap_model, t, dist <= g.band, p, g)
        # Changes fade in from the band's edge, so no seam appears where the band ends;
        # where the model itself is unsure over the whole neighbourhood (a plateau near
        # 0.5 rather than a steep ramp), a snapped edge would be a confident guess, so
        # the confidence gate keeps the model's alpha there. Tiles' cores are disjoint:
        # threads write without a lock.
        sure = _confidence(alpha, g.sure, t) if gated else None
        kernels.blend_band(
            out[t.write], alpha[t.write], soft, hard, zone, dist, sure, g.band, g.taper,
            p.confidence,
        )  # fmt: skip

    map_threads(one, edges, threads, name="refine")
    return out


def _edge_tiles(
    fg: NDArray[np.bool_], reach: int, halo: int, size: int, threads: int | None = None
) -> list[tuple[Tile, F32]]:
    """Tiles holding band pixels, each with the distance of its core pixels to the other
    side of the 0.5 contour (exact up to ``reach``, larger beyond).

    The distance (``kernels.side_distance``) runs on each tile's core grown by ``reach``
    rather than on the whole image: a pixel within ``reach`` of the other side finds it
    inside that crop, and tiles far from any contour (most of a large photo) cost
    nothing: a map of which small blocks hold both sides, made in one pass, rules them
    out."""
    h, w = fg.shape
    grow = reach + 1
    b = _SIDE_BLOCK
    sides = kernels.block_sides(fg.view(np.uint8), b, 1)
    # Running counts of the blocks holding each side answer "does this tile's grown crop
    # hold both?" in four lookups, so the pool only sees tiles near a contour (about one
    # in five of a 12 MP portrait's).
    has_fg = cv2.integral((sides & 1).astype(np.uint8), sdepth=cv2.CV_32S)
    has_bg = cv2.integral((sides >> 1).astype(np.uint8), sdepth=cv2.CV_32S)

    def crop(t: Tile) -> tuple[int, int, int, int]:
        return max(0, t.y0 - grow), min(h, t.y1 + grow), max(0, t.x0 - grow), min(w, t.x1 + grow)

    def crosses(t: Tile) -> bool:
        y0, y1, x0, x1 = crop(t)
        by0, by1, bx0, bx1 = y0 // b, -(-y1 // b), x0 // b, -(-x1 // b)
        return all(
            int(s[by1, bx1] - s[by0, bx1] - s[by1, bx0] + s[by0, bx0]) > 0 for s in (has_fg, has_bg)
        )

    def one(t: Tile) -> tuple[Tile, F32] | None:
        y0, y1, x0, x1 = crop(t)
        core = (t.y0 - y0, t.y1 - y0, t.x0 - x0, t.x1 - x0)
        dist = kernels.side_distance(fg[y0:y1, x0:x1], grow, core)
        return (t, dist) if (dist <= reach).any() else None

    candidates = [t for t in grid(fg.shape, halo, size) if crosses(t)]
    found = map_threads(one, candidates, threads, name="refine")
    return [e for e in found if e is not None]


def stats_scale(shape: tuple[int, ...]) -> int:
    """Integer shrink factor for the colour statistics: whole blocks average exactly, strip
    by strip, so no full-resolution float copy of the photo is ever needed."""
    return max(1, -(-max(shape[0], shape[1]) // STATS_SIDE))


def _colour_stats(
    rgb: U8, alpha: U8, band: NDArray[np.bool_], window: int, threads: int | None = None
) -> F32:
    """Packed low-resolution fields: mean F (3), mean B (3), their summed variance, and
    whether both had samples nearby. Samples come from outside the band; the fields are
    only read inside it."""
    k = stats_scale(alpha.shape)
    need = _needed(band, k)
    moments = [
        _weighted_moments(m, max(1, round(window / k)), need)
        for m in _block_sums(rgb, alpha, band, k, threads)
    ]
    (mf, vf, hf), (mb, vb, hb) = moments
    field = np.empty((*mf.shape[:2], 8), dtype=np.float32)
    field[..., :3] = mf
    field[..., 3:6] = mb
    field[..., 6] = vf + vb
    field[..., 7] = hf * hb
    return field


def _block_sums(
    rgb: U8, alpha: U8, band: NDArray[np.bool_], k: int, threads: int | None = None
) -> tuple[F32, F32]:
    """Per k×k block, for sure-foreground and sure-background samples outside ``band``:
    Σ I (3), Σ |I|² and Σ 1, divided by k² (``kernels.block_sums``), strips of block
    rows in parallel."""
    h, w = alpha.shape
    lh, lw = -(-h // k), -(-w // k)
    out = (np.zeros((lh, lw, 5), dtype=np.float32), np.zeros((lh, lw, 5), dtype=np.float32))
    rgb = np.ascontiguousarray(rgb)  # once, not per strip: the kernel reads it as H×3W
    rows = max(1, 128 // k)

    def strip(ly0: int) -> None:
        span = (ly0, min(lh, ly0 + rows))
        kernels.block_sums(rgb, alpha, band, k, SURE_FG, SURE_BG, out[0], out[1], span)

    map_threads(strip, range(0, lh, rows), threads, name="refine")
    return out


def _needed(band: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    """Statistics pixels that bilinear sampling reads for some band pixel: the band's
    blocks, grown by one pixel."""
    grown = cv2.dilate(kernels.block_any(band, k).view(np.uint8), np.ones((3, 3), np.uint8))
    return np.asarray(grown, dtype=bool)


def _weighted_moments(
    packed: F32, r: int, need: NDArray[np.bool_], levels: int = 4
) -> tuple[F32, F32, F32]:
    """Weighted local mean colour and variance; where a window holds (almost) no samples
    the window widens threefold, up to ``levels`` times, until every ``need`` pixel has
    its statistics."""
    mean = np.zeros((*packed.shape[:2], 3), dtype=np.float32)
    var = np.zeros(packed.shape[:2], dtype=np.float32)
    have = np.zeros(packed.shape[:2], dtype=bool)
    for i in range(levels):
        kernels.settle_moments(box(packed, r), 0.05 if i == 0 else 0.01, mean, var, have)
        if have[need].all():
            break
        r *= 3
    return mean, var, have.astype(np.float32)


def _tile(
    rgb: U8,
    alpha: U8,
    stats: F32,
    snap_model: F32 | None,
    t: Tile,
    in_band: NDArray[np.bool_],
    p: PassParams,
    g: _Geometry,
) -> tuple[F32, F32, F32]:
    """(soft alpha, snapped alpha, how far to prefer soft over snapped) over tile ``t``'s
    core, at its ``in_band`` pixels (elsewhere the values are unused)."""
    # The colour model runs only where the mixedness box of some band pixel reads it.
    need = np.zeros((t.py1 - t.py0, t.px1 - t.px0), np.uint8)
    need[t.core] = in_band
    need = np.asarray(cv2.dilate(need, np.ones((2 * g.gate + 1,) * 2, np.uint8)), np.uint8)
    mixed, soft = kernels.colour_band(
        rgb[t.read], alpha[t.read], stats, stats_scale(alpha.shape), (t.py0, t.px0), need,
        p.kappa, p.gate_kappa, SIGMA, MIXED, p.use_colour,
    )  # fmt: skip
    if snap_model is None:
        # The filter's model at the band's pixels only, from the tile's padded area (the
        # halo covers its 2r reach): the numpy formulation computed every pixel of the
        # tile with some forty box filters, about 6 of a 1 MP photo's 20 ms (2026-12-08).
        hard = np.where(alpha[t.read] >= 128, np.uint8(255), np.uint8(0))
        where = np.zeros(hard.shape, bool)
        where[t.core] = in_band
        local = guided_coefficients_at(rgb[t.read], hard, g.snap, p.snap_eps, where)
        origin = (t.y0 - t.py0, t.x0 - t.px0)
        snap = kernels.snap_band(rgb[t.write], local, 1, origin, in_band)
    else:
        snap = kernels.snap_band(rgb[t.write], snap_model, g.coarse, (t.y0, t.x0), in_band)
    lo, hi = p.gate
    zone = np.clip((box(mixed, g.gate)[t.core] - lo) / (hi - lo), 0.0, 1.0)
    return soft[t.core], snap, as_f32(zone)


def _snap_field(rgb: U8, alpha: U8, band: NDArray[np.bool_], p: PassParams, g: _Geometry) -> F32:
    """The snap's guided-filter model (``guided_coefficients``) on the photo and binarised
    matte shrunk ``g.coarse`` times, for images at least twice the model's 1024² grid.

    The matte carries no detail finer than that grid, and the filter's linear model is
    smooth at its radius, so computing the model there and applying it to the
    full-resolution photo (He and Sun's fast guided filter) keeps edges on the photo's
    own pixels at a ninth of the work for a 12 MP photo. Only the pixels that bilinear
    sampling reads for some band pixel get the model (``guided_kernels``)."""
    k, r = g.coarse, g.coarse_snap
    need = _needed(band, k)
    # The model at a pixel averages the per-pixel models of its window, each of which
    # reads a window of the guide: only the blocks within 2r of a needed pixel are shrunk.
    touch = cv2.dilate(need.view(np.uint8), np.ones((4 * r + 1, 4 * r + 1), np.uint8))
    guide = kernels.block_means_at(rgb, k, touch)
    hard = kernels.block_means_at(alpha[..., None], k, touch, cut=128)[..., 0]
    return guided_coefficients_at(guide, hard, r, p.snap_eps, need)


def _confidence(alpha: U8, r: int, t: Tile) -> U8:
    """The model's local confidence over tile ``t``'s core, mean |2α − 1| over a (2r+1)²
    window, as 0..255.

    A uint8 box filter of the core grown by ``r`` (reflected at the image's border only,
    so each core pixel sees exactly the window a whole-image filter would give it). Per
    edge tile rather than over the whole matte: at 12 MP the edge tiles and their margins
    cover about half the image, and the filter took 17 ms over all of it (2026-12-08)."""
    h, w = alpha.shape
    y0, y1, x0, x1 = max(0, t.y0 - r), min(h, t.y1 + r), max(0, t.x0 - r), min(w, t.x1 + r)
    crop = alpha[y0:y1, x0:x1]
    spread = cv2.absdiff(crop, cv2.bitwise_not(crop))
    blurred = cv2.blur(spread, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)
    out: U8 = np.asarray(blurred, np.uint8)[t.y0 - y0 : t.y1 - y0, t.x0 - x0 : t.x1 - x0]
    return out
