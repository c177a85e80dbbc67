"""Compiled per-pixel loops of edge refinement (numba), one pass where numpy needs dozens.

At 12 MP the band around a subject's outline holds a few million pixels, and the colour
model does about forty float operations on each. As numpy expressions every operation
is a pass over memory with a fresh temporary, and the GIL between them keeps a second
core idle; here each loop reads its inputs once, keeps intermediates in registers and
releases the GIL, so the caller's threads share tiles. The colour model's arithmetic is
float32 in the order of its numpy formulation (``refine_band`` documents the model); the
coarse fields it and the snap read are sampled bilinearly in float where ``cv2.resize``
would use 1/32-pixel fixed point, so results agree with that formulation to float
rounding (the tests compare them).

Compiled on first use and cached on disk next to this module (a few seconds, once).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import njit

from cleancut.core.types import F32, U8

_F = np.float32
_EPS = _F(1e-6)
_INV255 = _F(1.0 / 255.0)
_ONE = _F(1.0)
_ZERO = _F(0.0)


def colour_band(
    rgb: U8,
    alpha: U8,
    stats: F32,
    scale: int,
    origin: tuple[int, int],
    need: U8,
    kappa: float,
    gate_kappa: float,
    sigma: float,
    mixed: tuple[float, float],
    use_colour: float,
) -> tuple[F32, F32]:
    """(mixedness, soft alpha) of each ``need`` pixel of a tile (``rgb``, ``alpha``, whose
    top-left pixel is ``origin`` (y, x) of the image) from the F/B colour statistics
    ``stats`` (``refine_band._colour_stats``: each pixel the mean of a scale×scale block),
    sampled bilinearly as ``cv2.resize`` would enlarge them (edges replicated). Elsewhere
    mixedness is 0 and the soft alpha the matte's own."""
    h, w = alpha.shape
    mix = np.zeros((h, w), np.float32)
    soft = np.empty((h, w), np.float32)
    ys, yw = _taps(origin[0], h, scale, stats.shape[0])
    xs, xw = _taps(origin[1], w, scale, stats.shape[1])
    _colour_band(
        rgb, alpha, stats, ys, yw, xs, xw, need, _F(kappa), _F(gate_kappa), _F(sigma * sigma),
        _F(mixed[0]), _F(mixed[1]), _F(use_colour), mix, soft,
    )  # fmt: skip
    return mix, soft


def snap_band(rgb: U8, model: F32, scale: int, origin: tuple[int, int], where: Any) -> F32:
    """The snap at the ``where`` pixels of a tile (``rgb``, top-left at image pixel
    ``origin``): the guided filter's linear model ``model`` (``guided_kernels``, on the
    image shrunk ``scale`` times) sampled bilinearly, applied to the pixel's colour and
    clipped to [0, 1]; 0 elsewhere."""
    h, w = where.shape
    out = np.zeros((h, w), np.float32)
    ys, yw = _taps(origin[0], h, scale, model.shape[0])
    xs, xw = _taps(origin[1], w, scale, model.shape[1])
    _snap_band(rgb, model, ys, yw, xs, xw, where.view(np.uint8), out)
    return out


@functools.lru_cache(maxsize=512)
def _taps(start: int, n: int, scale: int, size: int) -> tuple[Any, Any]:
    """For full-resolution positions ``start … start+n-1`` on a grid ``scale`` times coarser
    (``size`` cells): the two cells each position lies between (a 2×n index array) and the
    second one's weight, as ``cv2.resize`` maps them (pixel centres aligned). Clamping both
    indices to the grid repeats its edge cells, as OpenCV's replicated border does."""
    pos = (np.arange(start, start + n, dtype=np.float64) + 0.5) / scale - 0.5
    first = np.floor(pos)
    weight = (pos - first).astype(np.float32)
    lo = np.clip(first, 0, size - 1).astype(np.int64)
    hi = np.clip(first + 1, 0, size - 1).astype(np.int64)
    idx = np.stack([lo, hi])
    # Cached (tiles in one row or column share them, and four numpy steps per call added
    # up to more than the loops they feed on small tiles): read-only, so none is changed.
    idx.flags.writeable = weight.flags.writeable = False
    return idx, weight


@njit(cache=True, nogil=True, inline="always")
def _lerp2(f: Any, ys: Any, yw: Any, xs: Any, xw: Any, y: Any, x: Any, c: Any) -> Any:
    wy, wx = yw[y], xw[x]
    y0, y1, x0, x1 = ys[0, y], ys[1, y], xs[0, x], xs[1, x]
    top = f[y0, x0, c] + wx * (f[y0, x1, c] - f[y0, x0, c])
    bottom = f[y1, x0, c] + wx * (f[y1, x1, c] - f[y1, x0, c])
    return top + wy * (bottom - top)


@njit(cache=True, nogil=True)
def _colour_band(
    rgb: Any, alpha: Any, stats: Any, ys: Any, yw: Any, xs: Any, xw: Any, need: Any,
    kappa: Any, gate_kappa: Any, sig2: Any, lo: Any, hi: Any, use_colour: Any,
    mix: Any, soft: Any,
) -> None:  # fmt: skip
    h, w = alpha.shape
    # Each row first blends the two coarse rows it lies between, over the coarse columns
    # the tile spans; a pixel then needs one horizontal blend per channel.
    c0 = xs[0, 0]
    row = np.empty((xs[1, w - 1] - c0 + 1, 8), np.float32)
    for y in range(h):
        wy, y0, y1 = yw[y], ys[0, y], ys[1, y]
        for i in range(row.shape[0]):
            for c in range(8):
                top = stats[y0, c0 + i, c]
                row[i, c] = top + wy * (stats[y1, c0 + i, c] - top)
        for x in range(w):
            a = np.float32(alpha[y, x]) * _INV255
            if need[y, x] == 0:
                soft[y, x] = a
                continue
            i0 = np.float32(rgb[y, x, 0]) * _INV255
            i1 = np.float32(rgb[y, x, 1]) * _INV255
            i2 = np.float32(rgb[y, x, 2]) * _INV255
            wx, j0, j1 = xw[x], xs[0, x] - c0, xs[1, x] - c0
            f0 = row[j0, 0] + wx * (row[j1, 0] - row[j0, 0])
            f1 = row[j0, 1] + wx * (row[j1, 1] - row[j0, 1])
            f2 = row[j0, 2] + wx * (row[j1, 2] - row[j0, 2])
            b0 = row[j0, 3] + wx * (row[j1, 3] - row[j0, 3])
            b1 = row[j0, 4] + wx * (row[j1, 4] - row[j0, 4])
            b2 = row[j0, 5] + wx * (row[j1, 5] - row[j0, 5])
            spread = row[j0, 6] + wx * (row[j1, 6] - row[j0, 6])
            have = row[j0, 7] + wx * (row[j1, 7] - row[j0, 7])
            d0, d1, d2 = f0 - b0, f1 - b1, f2 - b2
            n2 = d0 * d0 + d1 * d1 + d2 * d2
            ac = ((i0 - b0) * d0 + (i1 - b1) * d1 + (i2 - b2) * d2) / (n2 + _EPS)
            ac = min(max(ac, _ZERO), _ONE)
            r0 = i0 - (b0 + ac * d0)
            r1 = i1 - (b1 + ac * d1)
            r2 = i2 - (b2 + ac * d2)
            on_line = np.float32(math.exp(-(r0 * r0 + r1 * r1 + r2 * r2) / (n2 + _EPS)))
            if not have > np.float32(0.5):
                on_line = _ZERO
            trust = n2 / (n2 + sig2 + kappa * spread) * on_line
            trust_gate = n2 / (n2 + sig2 + gate_kappa * spread) * on_line
            mix[y, x] = trust_gate if lo < ac < hi else _ZERO
            blend = use_colour * trust
            soft[y, x] = blend * ac + (_ONE - blend) * a


@njit(cache=True, nogil=True)
def _snap_band(
    rgb: Any, model: Any, ys: Any, yw: Any, xs: Any, xw: Any, where: Any, out: Any
) -> None:
    h, w = where.shape
    for y in range(h):
        for x in range(w):
            if where[y, x] == 0:
                continue
            v = _lerp2(model, ys, yw, xs, xw, y, x, 3)
            for c in range(3):
                v += _lerp2(model, ys, yw, xs, xw, y, x, c) * (np.float32(rgb[y, x, c]) * _INV255)
            out[y, x] = min(max(v, _ZERO), _ONE)


def blend_band(
    out: U8,
    alpha: U8,
    soft: F32,
    snap: F32,
    zone: F32,
    dist: Any,
    sure: U8 | None,
    band: int,
    taper: float,
    confidence: tuple[float, float],
) -> None:
    """Write the refined alpha into ``out`` (a tile's core, in place) where ``dist`` ≤
    ``band``: the soft/snap mix chosen by ``zone``, faded in from the band's edge and
    gated by the model's confidence ``sure`` (None: no gate)."""
    c0, c1 = confidence
    gate = sure is not None
    _blend_band(
        out, alpha, soft, snap, zone, np.asarray(dist, np.float32), sure if gate else alpha, gate,
        _F(band), _F(band + 1.0), _F(taper), _F(c0), _F(c1 - c0),
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _blend_band(
    out: Any, alpha: Any, soft: Any, snap: Any, zone: Any, dist: Any, sure: Any,
    gate: Any, band: Any, edge: Any, taper: Any, c0: Any, span: Any,
) -> None:  # fmt: skip
    h, w = out.shape
    for y in range(h):
        for x in range(w):
            dd = dist[y, x]
            if not dd <= band:
                continue
            z = zone[y, x]
            q = z * soft[y, x] + (_ONE - z) * snap[y, x]
            a = np.float32(alpha[y, x]) * _INV255
            fade = min(max((edge - dd) / taper, _ZERO), _ONE)
            if gate:
                s = np.float32(sure[y, x]) * _INV255
                fade *= min(max((s - c0) / span, _ZERO), _ONE)
            v = (fade * q + (_ONE - fade) * a) * np.float32(255.0) + np.float32(0.5)
            out[y, x] = np.uint8(min(max(v, _ZERO), np.float32(255.0)))


def block_sums(
    rgb: U8, alpha: U8, band: Any, k: int, sure_fg: int, sure_bg: int, out_fg: F32, out_bg: F32,
    rows: tuple[int, int],
) -> None:  # fmt: skip
    """Fill block rows ``rows`` of ``out_fg``/``out_bg`` (lh×lw×5): per k×k block, over
    pixels outside ``band`` that are sure foreground (α ≥ ``sure_fg``) or background
    (α ≤ ``sure_bg``): Σ I/255 (3), Σ |I/255|², Σ 1, each divided by k² (blocks cut
    by the far edges count as if zero-padded). Sums are exact integers until the divide.
    ``rgb`` is read as an H×3W view (a non-contiguous one is copied first)."""
    flat = rgb.reshape(rgb.shape[0], -1)
    _block_sums(flat, alpha, band, k, sure_fg, sure_bg, out_fg, out_bg, rows[0], rows[1])


#: Image rows summed into the int32 column totals of ``_block_sums`` between flushes: a
#: packed half stays below 128·255 < 2¹⁵, so a packed word below 2³¹, and Σ r²+g²+b² below
#: 128·3·255² < 2³¹.
_FLUSH_ROWS = 128
_HALF = np.int32(1 << 16)
_LOW = 0xFFFF


@njit(cache=True, nogil=True)
def _block_sums(
    rgb: Any, alpha: Any, band: Any, k: Any, sure_fg: Any, sure_bg: Any,
    out_fg: Any, out_bg: Any, ly0: Any, ly1: Any,
) -> None:  # fmt: skip
    # Per block row, each image row adds into int32 column totals with 0/1 class weights,
    # which vectorises (a per-pixel pick of a block accumulator does not); the k columns
    # of each block are summed into exact int64 block totals at the end. Two of the five
    # sums share an int32 column (R + G·2¹⁶, B + N·2¹⁶): six column arrays, not ten, to
    # read and write per pixel. ``rgb`` comes as an H×3W view because indexing H×W×3
    # steps x by the array's runtime third extent, and LLVM's vector loop then assumes
    # that step is 1, so it never ran.
    h, w = alpha.shape
    lw = out_fg.shape[1]
    scale = np.float32(1.0) / np.float32(k * k)
    c = scale * _INV255
    cq = scale * _INV255 * _INV255
    fg_at, bg_at = np.int32(sure_fg), np.int32(sure_bg)
    f_rg, f_bn, f_q = np.zeros(w, np.int32), np.zeros(w, np.int32), np.zeros(w, np.int32)
    b_rg, b_bn, b_q = np.zeros(w, np.int32), np.zeros(w, np.int32), np.zeros(w, np.int32)
    acc = np.zeros((lw, 10), np.int64)
    for ly in range(ly0, ly1):
        acc[:] = 0
        y0, y1 = ly * k, min(h, (ly + 1) * k)
        for ys in range(y0, y1, _FLUSH_ROWS):
            for col in (f_rg, f_bn, f_q, b_rg, b_bn, b_q):
                col[:] = 0
            for y in range(ys, min(y1, ys + _FLUSH_ROWS)):
                for x in range(w):
                    keep = not band[y, x]
                    a = np.int32(alpha[y, x])
                    f = np.int32(keep & (a >= fg_at))
                    s = np.int32(keep & (a <= bg_at))
                    i = 3 * x
                    r, g, b = np.int32(rgb[y, i]), np.int32(rgb[y, i + 1]), np.int32(rgb[y, i + 2])
                    rg, bn = r + g * _HALF, b + _HALF
                    # numba widens int32 products to int64 and LLVM keeps the squares in
                    # 64-bit lanes; float32 squares of bytes are exact, and LLVM turns
                    # them into 32-bit integer multiplies.
                    fr, fg, fb = np.float32(r), np.float32(g), np.float32(b)
                    q = np.int32(fr * fr + fg * fg + fb * fb)
                    f_rg[x] += f * rg
                    f_bn[x] += f * bn
                    f_q[x] += f * q
                    b_rg[x] += s * rg
                    b_bn[x] += s * bn
                    b_q[x] += s * q
            # One pass over the columns, a block closing every k of them; the low halves
            # are summed apart, so a block's low sum may carry past 2¹⁶ harmlessly.
            bx = j = 0
            s0 = s1 = s2 = s3 = s4 = s5 = lo0 = lo1 = lo3 = lo4 = 0
            for x in range(w):
                v0, v1, v3, v4 = f_rg[x], f_bn[x], b_rg[x], b_bn[x]
                s0 += v0
                s1 += v1
                s2 += f_q[x]
                s3 += v3
                s4 += v4
                s5 += b_q[x]
                lo0 += v0 & _LOW
                lo1 += v1 & _LOW
                lo3 += v3 & _LOW
                lo4 += v4 & _LOW
                j += 1
                if j == k or x == w - 1:
                    acc[bx, 0] += lo0
                    acc[bx, 1] += (s0 - lo0) >> 16
                    acc[bx, 2] += lo1
                    acc[bx, 3] += s2
                    acc[bx, 4] += (s1 - lo1) >> 16
                    acc[bx, 5] += lo3
                    acc[bx, 6] += (s3 - lo3) >> 16
                    acc[bx, 7] += lo4
                    acc[bx, 8] += s5
                    acc[bx, 9] += (s4 - lo4) >> 16
                    bx, j = bx + 1, 0
                    s0 = s1 = s2 = s3 = s4 = s5 = lo0 = lo1 = lo3 = lo4 = 0
        for bx in range(lw):
            for cls, out in ((0, out_fg), (5, out_bg)):
                out[ly, bx, 0] = np.float32(acc[bx, cls + 0]) * c
                out[ly, bx, 1] = np.float32(acc[bx, cls + 1]) * c
                out[ly, bx, 2] = np.float32(acc[bx, cls + 2]) * c
                out[ly, bx, 3] = np.float32(acc[bx, cls + 3]) * cq
                out[ly, bx, 4] = np.float32(acc[bx, cls + 4]) * scale


def settle_moments(sums: F32, threshold: float, mean: F32, var: F32, have: Any) -> None:
    """One widening step of ``refine_band._weighted_moments``, in place: at each pixel not
    yet in ``have`` whose window weight ``sums[..., 4]`` exceeds ``threshold``, the mean
    colour ``sums[..., :3]`` / weight and the variance ``sums[..., 3]`` / weight − |mean|²
    (at least 0), in float32 in numpy's order; ``have`` then marks the pixel. One pass over
    the packed sums: as numpy steps on their strided channels it cost 3–5 ms a photo."""
    _settle_moments(sums, _F(threshold), mean, var, have.view(np.uint8))


@njit(cache=True, nogil=True)
def _settle_moments(sums: Any, threshold: Any, mean: Any, var: Any, have: Any) -> None:
    h, w = have.shape
    for y in range(h):
        for x in range(w):
            den = sums[y, x, 4]
            if have[y, x] != 0 or not den > threshold:
                continue
            safe = max(den, _EPS)
            m0, m1, m2 = sums[y, x, 0] / safe, sums[y, x, 1] / safe, sums[y, x, 2] / safe
            mean[y, x, 0], mean[y, x, 1], mean[y, x, 2] = m0, m1, m2
            var[y, x] = max(sums[y, x, 3] / safe - (m0 * m0 + m1 * m1 + m2 * m2), _ZERO)
            have[y, x] = 1


def block_any(mask: Any, k: int) -> Any:
    """Whether each k×k block of a boolean ``mask`` (partial blocks at the far edges
    included) holds a True: an lh×lw bool array."""
    return (block_sides(mask.view(np.uint8), k, 1) & 1).astype(np.bool_)


#: OpenCV's weights for ``distanceTransform(..., DIST_L2, 3)``: a straight step and a
#: diagonal one of the 3×3 chamfer.
_STEP = _F(0.955)
_DIAG = _F(1.3693)


def side_distance(fg: Any, cap: float, core: tuple[int, int, int, int]) -> F32:
    """For each pixel of ``fg``'s rows/columns ``core`` (y0, y1, x0, x1): the distance to
    the nearest pixel of the other class (``fg`` nonzero or zero), capped at ``cap``;
    the whole of ``fg`` is searched. This is ``max(distanceTransform(fg),
    distanceTransform(1 - fg))`` with OpenCV's 3×3 chamfer in one pass pair, and without
    the GIL."""
    y0, y1, x0, x1 = core
    out = np.empty((y1 - y0, x1 - x0), np.float32)
    _side_distance(fg.view(np.uint8), _F(cap), y0, x0, out)
    return out


#: Chunks of a row that the scans of ``_side_distance`` run side by side.
_CHAINS = 4


@njit(cache=True, nogil=True)
def _side_distance(fg: Any, cap: Any, y0: Any, x0: Any, out: Any) -> None:
    # A pixel's distance is the best over its causal neighbours of the step's cost, plus
    # the neighbour's own distance when it is of the same class (the chamfer run on both
    # classes at once). A border of class 2 is never "the other class" and its distance
    # is huge. Each row takes the three neighbours above (or below) for all pixels first,
    # which vectorises, then the one beside it in a serial scan.
    h, w = fg.shape
    cls = np.full((h + 2, w + 2), 2, np.uint8)
    cls[1:-1, 1:-1] = fg != 0
    d = np.full((h + 2, w + 2), _F(1e9), np.float32)
    for i in range(1, h + 1):
        _from_row(d, cls, i, i - 1)
        _scan(d, cls, i, 1)
    for i in range(h, 0, -1):
        _from_row(d, cls, i, i + 1)
        _scan(d, cls, i, -1)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = min(d[y0 + y + 1, x0 + x + 1], cap)


@njit(cache=True, nogil=True)
def _from_row(d: Any, cls: Any, y: Any, ny: Any) -> None:
    """Row ``y`` of the chamfer from its three neighbours in row ``ny``."""
    for x in range(1, d.shape[1] - 1):
        c = cls[y, x]
        v0 = _DIAG if cls[ny, x - 1] ^ c == 1 else d[ny, x - 1] + _DIAG
        v1 = _STEP if cls[ny, x] ^ c == 1 else d[ny, x] + _STEP
        v2 = _DIAG if cls[ny, x + 1] ^ c == 1 else d[ny, x + 1] + _DIAG
        d[y, x] = min(min(min(v0, v1), v2), d[y, x])


# The scans are chains of dependent steps (their latency, not the arithmetic, sets their
# speed): a row's chunks run interleaved as independent chains, then each chunk's carry
# from the one before runs on for as long as it still improves a pixel. Each pixel ends
# with the value, from the same operations, that one serial scan gives; a third less time
# per tile (2026-12-08). The steps stay written out: a helper in their loops undid it.


@njit(cache=True, nogil=True)
def _scan(d: Any, cls: Any, y: Any, step: Any) -> None:
    """Row ``y`` of the chamfer from the pixel before, left to right (``step`` 1) or right
    to left (``step`` −1)."""
    w = d.shape[1] - 2
    first = 1 if step == 1 else w
    chunk = (w + _CHAINS - 1) // _CHAINS
    for j in range(chunk):
        for k in range(_CHAINS):
            p = k * chunk + j
            if p < w:
                x = first + step * p
                v = _STEP if cls[y, x - step] ^ cls[y, x] == 1 else d[y, x - step] + _STEP
                if v < d[y, x]:
                    d[y, x] = v
    for k in range(1, _CHAINS):
        p = k * chunk
        while p < w:
            x = first + step * p
            v = _STEP if cls[y, x - step] ^ cls[y, x] == 1 else d[y, x - step] + _STEP
            if not v < d[y, x]:
                break
            d[y, x] = v
            p += 1


def block_means_at(x: U8, k: int, where: Any, cut: int = 0) -> U8:
    """Rounded means of the k×k blocks of ``x`` (H×W×C uint8) at the ``where`` blocks
    (lh×lw bool), zero elsewhere; partial blocks at the far edges average the pixels they
    have. With ``cut`` > 0, a pixel counts as 255 where it is ≥ ``cut`` and 0 below (a
    binarised matte shrunk in the same pass)."""
    lh, lw = where.shape
    out = np.zeros((lh, lw, x.shape[2]), np.uint8)
    _block_means_at(x, k, where.view(np.uint8), cut, out)
    return out


@njit(cache=True, nogil=True)
def _block_means_at(x: Any, k: Any, where: Any, cut: Any, out: Any) -> None:
    h, w, c = x.shape
    lh, lw = where.shape
    total = np.zeros(c, np.int64)
    for ly in range(lh):
        y0, y1 = ly * k, min(h, (ly + 1) * k)
        for lx in range(lw):
            if where[ly, lx] == 0:
                continue
            x0, x1 = lx * k, min(w, (lx + 1) * k)
            total[:] = 0
            for y in range(y0, y1):
                for xx in range(x0, x1):
                    for ch in range(c):
                        v = x[y, xx, ch]
                        total[ch] += v if cut == 0 else (255 if v >= cut else 0)
            n = (y1 - y0) * (x1 - x0)
            for ch in range(c):
                out[ly, lx, ch] = (total[ch] + n // 2) // n


def block_sides(alpha: U8, k: int, cut: int) -> Any:
    """Per k×k block of ``alpha``: bit 1 set where some pixel is ≥ ``cut``, bit 2 where
    some pixel is below it (both: the 0.5 contour crosses the block)."""
    h, w = alpha.shape
    out = np.zeros((-(-h // k), -(-w // k)), np.uint8)  # the kernel ORs into it
    _block_sides(alpha, k, np.uint8(cut), out)
    return out


@njit(cache=True, nogil=True)
def _block_sides(alpha: Any, k: Any, cut: Any, out: Any) -> None:
    h, w = alpha.shape
    lh, lw = out.shape
    cols = np.zeros(w, np.uint8)
    for ly in range(lh):
        cols[:] = 0
        for y in range(ly * k, min(h, (ly + 1) * k)):
            for x in range(w):
                cols[x] |= np.uint8(2) - np.uint8(alpha[y, x] >= cut)
        # Column c of every whole block at once, a strided loop that vectorises; a loop
        # per block ran k iterations at a time, 3x slower at the snap's k of 2 or 3.
        whole = w // k
        for c in range(k):
            for bx in range(whole):
                out[ly, bx] |= cols[bx * k + c]
        if whole < lw:
            seen = np.uint8(0)
            for x in range(whole * k, w):
                seen |= cols[x]
            out[ly, whole] = seen
