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
tiles that touch the band.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from cleancut.core.refine_ops import (
    TILE,
    Tile,
    as_f32,
    box,
    grid,
    guided_filter,
    sample,
    to_u8,
    to_unit,
)
from cleancut.core.types import F32, U8

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
        )


def refine_pass(rgb: U8, alpha: U8, p: PassParams, tile: int = TILE) -> U8:
    fg = alpha >= 128
    if fg.all() or not fg.any():
        return alpha.copy()
    g = _Geometry.of(alpha.shape, p)
    edges = list(_edge_tiles(fg, g.band, 2 * g.snap + g.gate + 2, tile))
    band = np.zeros(alpha.shape, dtype=bool)
    for t, dist in edges:
        band[t.write] = dist <= g.band
    stats = _colour_stats(rgb, alpha, band, g.window)
    c0, c1 = p.confidence
    sure = _confidence(alpha, g.sure) if c1 > c0 else None
    out = alpha.copy()
    scale = stats_scale(alpha.shape)
    for t, dist in edges:
        field = sample(stats, alpha.shape, t, scale=scale)
        q = _tile(rgb[t.read], alpha[t.read], field, p, g)[t.core]
        a = to_unit(alpha[t.write])
        # Changes fade in from the band's edge, so no seam appears where the band ends.
        fade = as_f32(np.clip((g.band + 1.0 - dist.astype(np.float32)) / g.taper, 0.0, 1.0))
        if sure is not None:
            # Where the model itself is unsure over the whole neighbourhood (a plateau near
            # 0.5 rather than a steep ramp), a snapped edge would be a confident guess:
            # keep the model's alpha there.
            fade *= np.clip((to_unit(sure[t.write]) - c0) / (c1 - c0), 0.0, 1.0)
        inside_band = dist <= g.band
        region = out[t.write]
        region[inside_band] = to_u8(as_f32(fade * q + (1.0 - fade) * a))[inside_band]
    return out


def _edge_tiles(
    fg: NDArray[np.bool_], reach: int, halo: int, size: int
) -> Iterator[tuple[Tile, NDArray[np.float16]]]:
    """Tiles holding band pixels, each with the distance of its core pixels to the other
    side of the 0.5 contour (exact up to ``reach``, larger beyond).

    The distance transform runs on each tile's core grown by ``reach`` rather than on
    the whole image: a pixel within ``reach`` of the other side finds it inside that
    crop, and tiles far from any contour (most of a large photo) cost nothing."""
    h, w = fg.shape
    grow = reach + 1
    for t in grid(fg.shape, halo, size):
        y0, y1 = max(0, t.y0 - grow), min(h, t.y1 + grow)
        x0, x1 = max(0, t.x0 - grow), min(w, t.x1 + grow)
        crop = fg[y0:y1, x0:x1]
        if crop.all() or not crop.any():
            continue
        inside = crop.astype(np.uint8)
        dist = np.maximum(
            cv2.distanceTransform(inside, cv2.DIST_L2, 3),
            cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3),
        )[t.y0 - y0 : t.y1 - y0, t.x0 - x0 : t.x1 - x0]
        if (dist <= reach).any():
            # float16 keeps the per-tile distances small; only values up to ``reach``
            # (well inside float16's exact integers and halves) are ever compared.
            yield t, np.minimum(dist, grow).astype(np.float16)


def stats_scale(shape: tuple[int, ...]) -> int:
    """Integer shrink factor for the colour statistics: whole blocks average exactly, strip
    by strip, so no full-resolution float copy of the photo is ever needed."""
    return max(1, -(-max(shape[0], shape[1]) // STATS_SIDE))


def _colour_stats(rgb: U8, alpha: U8, band: NDArray[np.bool_], window: int) -> F32:
    """Packed low-resolution fields: mean F (3), mean B (3), their summed variance, and
    whether both had samples nearby. Samples come from outside the band; the fields are
    only read inside it."""
    k = stats_scale(alpha.shape)
    need = _needed(band, k)
    moments = [
        _weighted_moments(m, max(1, round(window / k)), need)
        for m in _block_sums(rgb, alpha, ~band, k)
    ]
    (mf, vf, hf), (mb, vb, hb) = moments
    field = np.empty((*mf.shape[:2], 8), dtype=np.float32)
    field[..., :3] = mf
    field[..., 3:6] = mb
    field[..., 6] = vf + vb
    field[..., 7] = hf * hb
    return field


def _block_sums(rgb: U8, alpha: U8, sure: NDArray[np.bool_], k: int) -> tuple[F32, F32]:
    """Per k×k block, for sure-foreground and sure-background samples: Σ w·I (3), Σ w·|I|²
    and Σ w, divided by k² (blocks cut by the far edges count as if zero-padded).

    Everything stays in integers until the blocks are summed: integral images give exact
    colour sums and counts, and squares (exact in uint16) are block-averaged by OpenCV's
    integer-factor area resize. Converting the full-resolution photo to float would cost
    more than all the sums together at 12 MP."""
    h, w = alpha.shape
    lh, lw = -(-h // k), -(-w // k)
    out = [np.zeros((lh, lw, 5), dtype=np.float32) for _ in range(2)]
    rows = max(1, 128 // k)
    xs = np.minimum(np.arange(lw + 1) * k, w)
    scale = np.float32(1.0 / (k * k))
    for ly0 in range(0, lh, rows):
        ly1 = min(lh, ly0 + rows)
        y0, y1 = ly0 * k, min(h, ly1 * k)
        ys = np.minimum(np.arange(ly1 - ly0 + 1) * k, y1 - y0)
        strip = rgb[y0:y1]
        a = alpha[y0:y1]
        weights = (sure[y0:y1] & (a >= SURE_FG), sure[y0:y1] & (a <= SURE_BG))
        for dst, weight in zip(out, weights, strict=True):
            wt = weight.view(np.uint8)
            masked = cv2.bitwise_and(strip, strip, mask=wt)
            block = dst[ly0:ly1]
            block[..., :3] = _corners(cv2.integral(masked, sdepth=cv2.CV_32S), ys, xs)
            block[..., :3] *= scale / 255.0
            block[..., 4] = _corners(cv2.integral(wt, sdepth=cv2.CV_32S), ys, xs) * scale
            squares = np.asarray(cv2.multiply(masked, masked, dtype=cv2.CV_16U), np.uint16)
            block[..., 3] = _block_means(squares, k, ly1 - ly0, lw).sum(axis=2)
            block[..., 3] *= np.float32(1.0 / 255.0**2)
    return out[0], out[1]


def _corners(integral: NDArray[np.generic], ys: NDArray[np.int64], xs: NDArray[np.int64]) -> F32:
    """Block sums from an integral image sampled at the block grid ``ys`` × ``xs``."""
    grid = integral[ys][:, xs].astype(np.float64)
    return as_f32(grid[1:, 1:] - grid[:-1, 1:] - grid[1:, :-1] + grid[:-1, :-1])


def _block_means(x: NDArray[np.uint16], k: int, lh: int, lw: int) -> F32:
    """Means of k×k blocks (zero-padded to whole blocks); exact to half a unit of x."""
    if k == 1:
        return as_f32(x)
    pad_y, pad_x = lh * k - x.shape[0], lw * k - x.shape[1]
    if pad_y or pad_x:
        x = np.asarray(
            cv2.copyMakeBorder(x, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT, value=0), np.uint16
        )
    return as_f32(cv2.resize(x, (lw, lh), interpolation=cv2.INTER_AREA))


def _needed(band: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    """Statistics pixels that bilinear sampling reads for some band pixel: the band's
    blocks, grown by one pixel."""
    h, w = band.shape
    lh, lw = -(-h // k), -(-w // k)
    if k == 1:
        blocks = band.astype(np.uint8)
    else:
        padded = np.zeros((lh * k, lw * k), dtype=np.uint8)
        padded[:h, :w] = band
        blocks = padded.reshape(lh, k, lw, k).max(axis=(1, 3))
    grown = cv2.dilate(blocks, np.ones((3, 3), np.uint8))
    return np.asarray(grown, dtype=bool)


def _dot(x: F32, y: F32) -> F32:
    """Per-pixel dot product of two H×W×3 arrays (faster than a sum over a 3-long axis)."""
    return as_f32(x[..., 0] * y[..., 0] + x[..., 1] * y[..., 1] + x[..., 2] * y[..., 2])


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
        s = box(packed, r)
        den = s[..., 4]
        safe = np.maximum(den, 1e-6)[..., None]
        # as_f32 is free here (both operands are float32); it pins the type for numpy's stubs
        m = as_f32(s[..., :3] / safe)
        v = np.maximum(s[..., 3] / safe[..., 0] - _dot(m, m), 0.0)
        new = ~have & (den > (0.05 if i == 0 else 0.01))
        np.copyto(mean, m, where=new[..., None])
        np.copyto(var, v, where=new)
        have |= new
        if have[need].all():
            break
        r *= 3
    return mean, var, have.astype(np.float32)


def _tile(rgb: U8, alpha: U8, field: F32, p: PassParams, g: _Geometry) -> F32:
    img = to_unit(rgb)
    a = to_unit(alpha)
    snap = np.clip(guided_filter(img, (alpha >= 128).astype(np.float32), g.snap, p.snap_eps), 0, 1)
    f, b = field[..., :3], field[..., 3:6]
    spread, have = field[..., 6], field[..., 7]
    d = f - b
    n2 = _dot(d, d)
    ac = np.clip(_dot(img - b, d) / (n2 + 1e-6), 0.0, 1.0)
    res = img - (b + ac[..., None] * d)
    # How far the pixel lies from the F–B line, relative to the line's length.
    on_line = np.exp(-_dot(res, res) / (n2 + 1e-6)) * (have > 0.5)
    sig2 = np.float32(SIGMA * SIGMA)
    trust = n2 / (n2 + sig2 + np.float32(p.kappa) * spread) * on_line
    trust_gate = n2 / (n2 + sig2 + np.float32(p.gate_kappa) * spread) * on_line
    mixed = trust_gate * ((ac > MIXED[0]) & (ac < MIXED[1]))
    lo, hi = p.gate
    soft_zone = np.clip((box(as_f32(mixed), g.gate) - lo) / (hi - lo), 0.0, 1.0)
    blend = np.float32(p.use_colour) * trust
    soft = blend * ac + (1.0 - blend) * a
    return as_f32(soft_zone * soft + (1.0 - soft_zone) * snap)


def _confidence(alpha: U8, r: int) -> U8:
    """The model's local confidence, mean |2α − 1| over a (2r+1)² window, as 0..255.

    One uint8 box filter over the whole matte (about a byte per pixel, a few dozen ms at
    12 MP) instead of float work per tile: it needs no tile halo, which at this window's
    size would enlarge every edge tile."""
    spread = cv2.absdiff(alpha, cv2.bitwise_not(alpha))
    out: U8 = np.asarray(
        cv2.blur(spread, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT), np.uint8
    )
    return out
