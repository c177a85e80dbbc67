"""Mask → smooth closed cubic Bezier paths, for Photoshop clipping paths and SVG.

``trace`` works at full resolution, vectorised over all contours at once:

1. **Topology.** ``cv2.findContours`` (RETR_CCOMP) orders the boundary of every object and hole.
2. **Sub-pixel placement.** Each boundary pixel's background 4-neighbours ("cracks") become
   points where the *soft* alpha crosses the threshold, interpolated linearly between the two
   pixel centres (the vertices marching squares would give); a 0/255 mask gives pixel edges.
3. **Corners.** A point turning more than ``corner_angle`` over ±4 samples, and more than its
   neighbours, is a corner, snapped to where its two edges meet when that is near.
4. **Fitting.** Spans between corners are fitted with cubics by least squares within
   ``smoothness`` px, split at their worst point with a shared tangent (Schneider's method,
   run level by level over all pieces at once), so joins are smooth.

Coordinates are pixel-edge based: (0, 0) is the top-left corner of the image, (W, H) the
bottom-right one. Objects run counter-clockwise on screen and holes clockwise, so both the
even-odd and the non-zero rule leave holes transparent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from cleancut.core.types import U8
from cleancut.errors import InvalidInput, InvalidOptions

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Point = tuple[float, float]

_WINDOW = 4  # samples either side for corner angles and end tangents
_MAX_NEWTON = 4
_HARD_STEP = 240  # an edge step this steep (of 255) is a hard edge
_HARD_FRACTION = 0.9  # a boundary with this share of hard steps is a hard mask
_HARD_SLACK = 0.5  # px added to the tolerance for such masks

# 8-neighbour directions, counter-clockwise on screen (y grows downwards).
_DX = np.array([1, 1, 0, -1, -1, -1, 0, 1], np.int64)
_DY = np.array([0, -1, -1, -1, 0, 1, 1, 1], np.int64)
_CODE = np.array([3, 2, 1, 4, 8, 0, 5, 6, 7], np.int64)  # by (dy + 1) * 3 + (dx + 1); 8 = none


def _sector_table() -> I64:
    """The background 4-neighbours of a boundary pixel, in trace order, by (way back, way on).

    OpenCV's border following keeps the background on its right, so they are those from the
    way back turning counter-clockwise to the way on (both exclusive); 8 marks a lone pixel.
    """
    table = np.full((9, 9, 4), -1, np.int64)
    for back in range(8):
        for on in range(8):
            span = [(back + i) % 8 for i in range(1, 8)]
            span = span[: span.index(on)] if on != back else span
            found = [d for d in span if d % 2 == 0]
            table[back, on, : len(found)] = found
    table[8, 8] = [0, 2, 4, 6]
    return table


_SECTORS = _sector_table()


@dataclass(frozen=True)
class Knot:
    """One Bezier anchor with its incoming (``preceding``) and outgoing (``leaving``) handles,
    as (x, y) in pixel-edge coordinates."""

    preceding: Point
    anchor: Point
    leaving: Point

    @property
    def linked(self) -> bool:
        """True for a smooth knot: both handles present and pointing opposite ways."""
        (ax, ay), (px, py), (lx, ly) = self.anchor, self.preceding, self.leaving
        px, py, lx, ly = px - ax, py - ay, lx - ax, ly - ay
        norm = math.hypot(px, py) * math.hypot(lx, ly)
        return norm > 1e-12 and abs(px * ly - py * lx) <= 1e-3 * norm and px * lx + py * ly < 0


@dataclass(frozen=True)
class Subpath:
    knots: tuple[Knot, ...]
    closed: bool = True

    def segments(self) -> F64:
        """The cubic segments as an (n, 4, 2) array of control points, closing one included."""
        k = self.knots
        count = len(k) if self.closed else len(k) - 1
        out = np.empty((max(count, 0), 4, 2), np.float64)
        for i in range(count):
            a, b = k[i], k[(i + 1) % len(k)]
            out[i] = (a.anchor, a.leaving, b.preceding, b.anchor)
        return out


def trace(
    alpha: U8,
    *,
    threshold: float = 0.5,
    smoothness: float = 0.5,
    min_area: float = 8.0,
    corner_angle: float = 60.0,
) -> list[Subpath]:
    """Trace a matte into closed Bezier subpaths: each object, then its holes.

    ``threshold`` (0..1] is the matte level the path follows; ``smoothness`` the largest
    distance in px allowed between the path and that iso-line (plus ½ px for a hard 0/255
    mask, whose edge is only known to the pixel); objects and holes under ``min_area`` px²
    are dropped; turns sharper than ``corner_angle`` degrees stay corners.
    """
    if not isinstance(alpha, np.ndarray) or alpha.dtype != np.uint8 or alpha.ndim != 2:
        raise InvalidInput("trace() needs an H×W uint8 matte")
    if not 0.0 < threshold <= 1.0 or smoothness <= 0 or min_area < 0:
        raise InvalidOptions("threshold must be in (0, 1], smoothness > 0 and min_area >= 0")
    if not 0.0 < corner_angle <= 180.0:
        raise InvalidOptions("corner_angle must be in (0, 180] degrees")
    found = _boundaries(alpha, max(round(threshold * 255), 1))
    if found is None:
        return []
    loops, areas, hierarchy, hard = found
    # A hard (0/255) mask only places its edge to within half a pixel; a fit held tighter
    # than that would chase the pixel staircase instead of the shape.
    tol = smoothness + (_HARD_SLACK if hard >= _HARD_FRACTION else 0.0)
    kept = _ordered(hierarchy, areas, min_area)
    if not kept:
        return []
    return _fit_loops([loops[i] for i in kept], tol, math.cos(math.radians(corner_angle)))


def _boundaries(alpha: U8, cut: int) -> tuple[list[F64], F64, NDArray[np.int32], float] | None:
    """Sub-pixel loops, signed areas, the RETR_CCOMP hierarchy and the fraction of boundary
    steps that go straight from (nearly) opaque to (nearly) transparent."""
    padded: U8 = np.asarray(cv2.copyMakeBorder(alpha, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0))
    _, fg = cv2.threshold(padded, cut - 1, 1, cv2.THRESH_BINARY)
    found, hierarchy = cv2.findContours(fg, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not found:
        return None
    contours = [np.asarray(c, np.int64).reshape(-1, 2) for c in found]
    loops, areas, hard = _crack_loops(contours, padded, cut - 0.5)
    return loops, areas, hierarchy[0], hard


def _ordered(hier: NDArray[np.int32], areas: F64, min_area: float) -> list[int]:
    """Contour indices kept, each object followed by its holes."""
    order: list[int] = []
    for i in np.flatnonzero(hier[:, 3] < 0).tolist():
        if abs(areas[i]) < min_area:
            continue
        order.append(i)
        child = int(hier[i, 2])
        while child >= 0:
            if abs(areas[child]) >= min_area:
                order.append(child)
            child = int(hier[child, 0])
    return order


def _crack_loops(contours: Sequence[I64], soft: U8, level: float) -> tuple[list[F64], F64, float]:
    """Sub-pixel loops (pixel-edge coordinates), their signed areas and the share of hard
    steps, for all contours in one vectorised pass; ``soft`` is the padded matte."""
    lens = np.array([len(c) for c in contours], np.int64)
    starts = np.cumsum(lens) - lens
    pts = np.concatenate(contours)
    owner = np.repeat(np.arange(len(lens)), lens)
    local = np.arange(len(pts)) - starts[owner]
    prev = starts[owner] + (local - 1) % lens[owner]
    nxt = starts[owner] + (local + 1) % lens[owner]

    def code(d: I64) -> I64:
        out: I64 = _CODE[(d[:, 1] + 1) * 3 + (d[:, 0] + 1)]
        return out

    table = _SECTORS[code(pts[prev] - pts), code(pts[nxt] - pts)]
    rows, slots = np.nonzero(table >= 0)
    dirs = table[rows, slots]
    inside = pts[rows]
    dx, dy = _DX[dirs], _DY[dirs]
    a_in = soft[inside[:, 1], inside[:, 0]].astype(np.float64)
    a_out = soft[inside[:, 1] + dy, inside[:, 0] + dx].astype(np.float64)
    frac = (a_in - level) / (a_in - a_out)
    xy = np.empty((len(rows), 2), np.float64)
    xy[:, 0] = inside[:, 0] - 0.5 + frac * dx
    xy[:, 1] = inside[:, 1] - 0.5 + frac * dy

    counts = np.bincount(owner[rows], minlength=len(lens))
    firsts = np.cumsum(counts) - counts
    crack_owner = owner[rows]
    following = (
        firsts[crack_owner]
        + (np.arange(len(rows)) - firsts[crack_owner] + 1) % (counts[crack_owner])
    )
    cross = xy[:, 0] * xy[following, 1] - xy[following, 0] * xy[:, 1]
    areas = np.zeros(len(lens), np.float64)
    np.add.at(areas, crack_owner, cross)
    hard = float(np.mean(a_in - a_out >= _HARD_STEP))
    return np.split(xy, firsts[1:]), areas * 0.5, hard


def _groups(lens: I64) -> tuple[I64, I64, I64]:
    """Items laid out group after group: each one's group and index in it, each group's start."""
    first = np.cumsum(lens) - lens
    owner = np.repeat(np.arange(len(lens)), lens)
    return owner, np.arange(int(lens.sum())) - first[owner], first


def _unit(v: F64) -> F64:
    n = np.hypot(v[:, 0], v[:, 1])[:, None]
    out: F64 = np.divide(v, n, out=np.zeros_like(v), where=n > 1e-12)
    return out


def _fit_loops(loops: Sequence[F64], tol: float, cos_corner: float) -> list[Subpath]:
    """All loops at once: corners, breakpoints, then level-by-level cubic fitting."""
    lens = np.array([len(p) for p in loops], np.int64)
    pts = np.concatenate(loops)
    owner, local, start = _groups(lens)
    m, kk = lens[owner], np.minimum(_WINDOW, np.maximum(1, lens // 4))
    k = kk[owner]

    def at(i: I64, off: I64 | int) -> I64:  # the point ``off`` samples from point i, cyclic
        out: I64 = start[owner[i]] + (local[i] + off) % m[i]
        return out

    every = np.arange(len(pts))
    v1, v2 = pts - pts[at(every, -k)], pts[at(every, k)] - pts
    norms = np.hypot(v1[:, 0], v1[:, 1]) * np.hypot(v2[:, 0], v2[:, 1])
    turn = -np.einsum("ij,ij->i", v1, v2) / np.maximum(norms, 1e-12)  # -cos, larger is sharper
    corner = turn > -cos_corner
    for s in range(1, _WINDOW + 1):  # local maxima: the first of equal neighbours wins
        corner &= (s > k) | ((turn > turn[at(every, -s)]) & (turn >= turn[at(every, s)]))
    c = np.flatnonzero(corner)
    pts = _snap_corners(pts, c[k[c] >= 3], at, k, tol)

    # Breakpoints: corners; a loop with no corner is cut at 0 and halfway, one with a single
    # corner halfway round too (smooth cuts), so that no piece starts and ends at one point.
    per_loop = np.bincount(owner[c], minlength=len(lens))
    none, one = np.flatnonzero(per_loop == 0), np.flatnonzero(per_loop == 1)
    lone = local[c][per_loop[owner[c]] == 1]
    bp_loop = np.concatenate([owner[c], none, none, one])
    bp_local = np.concatenate(
        [local[c], 0 * none, lens[none] // 2, (lone + lens[one] // 2) % lens[one]]
    )
    bp_corner = np.concatenate([np.ones(len(c), bool), np.zeros(2 * len(none) + len(one), bool)])
    order = np.lexsort((bp_local, bp_loop))
    bp_loop, bp_local, bp_corner = bp_loop[order], bp_local[order], bp_corner[order]
    bp_first = np.searchsorted(bp_loop, np.arange(len(lens)))
    bp_point = start[bp_loop] + bp_local
    central = _unit(pts[at(bp_point, k[bp_point])] - pts[at(bp_point, -k[bp_point])])

    # Each loop unrolled from its first breakpoint, its first point repeated at the end.
    rot = bp_local[bp_first]
    e_owner, e_local, e_first = _groups(lens + 1)
    ext = pts[start[e_owner] + (rot[e_owner] + e_local) % lens[e_owner]]
    same = np.append(bp_loop[1:] == bp_loop[:-1], False)
    nxt = np.where(same, np.arange(1, len(bp_loop) + 1), bp_first[bp_loop])
    a = e_first[bp_loop] + (bp_local - rot[bp_loop]) % lens[bp_loop]
    b = np.where(same, np.append(a[1:], 0), e_first[bp_loop] + lens[bp_loop])
    span = np.minimum(kk[bp_loop], b - a)
    ta = np.where(bp_corner[:, None], _unit(ext[a + span] - ext[a]), central)
    tb = np.where(bp_corner[nxt][:, None], _unit(ext[b - span] - ext[b]), -central[nxt])

    # Corner-to-corner pieces that are straight within the tolerance become lines.
    line = bp_corner & bp_corner[nxt]
    li = np.flatnonzero(line)
    if li.size:
        pid, _, first = _groups(b[li] - a[li] + 1)
        chord = ext[b[li]] - ext[a[li]]
        rel = ext[a[li][pid] + np.arange(len(pid)) - first[pid]] - ext[a[li]][pid]
        dist = np.abs(rel[:, 0] * chord[pid, 1] - rel[:, 1] * chord[pid, 0])
        straight = np.maximum.reduceat(dist, first) <= tol * np.hypot(chord[:, 0], chord[:, 1])
        line[li[~straight]] = False
    seg_a = [a[line]]
    seg_ctrl = [ext[np.stack([a[line], a[line], b[line], b[line]], 1)]]
    a, b, ta, tb, kp = a[~line], b[~line], ta[~line], tb[~line], kk[bp_loop[~line]]
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(ext, axis=0).T))])
    while len(a):
        ctrl, ok, split = _fit_pieces(ext, cum, a, b, ta, tb, tol * tol)
        seg_a.append(a[ok])
        seg_ctrl.append(ctrl[ok])
        a, b, ta, tb, kp, split = a[~ok], b[~ok], ta[~ok], tb[~ok], kp[~ok], split[~ok]
        tc = _unit(ext[np.maximum(split - kp, a)] - ext[np.minimum(split + kp, b)])
        flat = np.asarray(tc.any(axis=1))[:, None]
        tc = np.where(flat, tc, _unit(ext[a] - ext[b]))
        a, b = np.concatenate([a, split]), np.concatenate([split, b])
        ta, tb = np.concatenate([ta, -tc]), np.concatenate([tc, tb])
        kp = np.concatenate([kp, kp])
    return _subpaths(np.concatenate(seg_a), np.concatenate(seg_ctrl), e_owner)


def _snap_corners(pts: F64, c: I64, at: Callable[[I64, I64 | int], I64], k: I64, tol: float) -> F64:
    """Move each corner to where its incoming and outgoing edges meet, if that is near."""
    p, q = pts[at(c, -k[c])], pts[at(c, -2)]
    d, e = pts[at(c, 2)], pts[at(c, k[c])]
    r, s = q - p, e - d
    den = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    scale = np.hypot(r[:, 0], r[:, 1]) * np.hypot(s[:, 0], s[:, 1])
    t = ((d[:, 0] - p[:, 0]) * s[:, 1] - (d[:, 1] - p[:, 1]) * s[:, 0]) / np.where(den, den, 1.0)
    x = p + t[:, None] * r
    near = (np.abs(den) > 1e-9 * (scale + 1e-12)) & (np.hypot(*(x - pts[c]).T) <= max(tol, 1.0))
    out = pts.copy()
    out[c[near]] = x[near]
    return out


def _fit_pieces(
    ext: F64, cum: F64, a: I64, b: I64, ta: F64, tb: F64, tol2: float
) -> tuple[F64, NDArray[np.bool_], I64]:
    """One cubic per piece ext[a..b] with end tangents ta, tb (Schneider's step, batched):
    control points, whether each is within the tolerance, and the worst point to split at."""
    q = len(a)
    ctrl, ok, split = np.empty((q, 4, 2)), np.zeros(q, bool), a + 1
    live = np.arange(q)
    pid, _, first = _groups(b - a + 1)
    idx = a[pid] + np.arange(len(pid)) - first[pid]
    x, y = ext[idx, 0], ext[idx, 1]
    u = (cum[idx] - cum[a][pid]) / np.maximum(cum[b] - cum[a], 1e-12)[pid]
    for it in range(_MAX_NEWTON + 1):
        p0, p3, t0, t3 = ext[a[live]], ext[b[live]], ta[live], tb[live]
        chord, arc = np.hypot(*(p3 - p0).T), cum[b[live]] - cum[a[live]]
        v = 1.0 - u
        b0, b1, b2, b3 = v * v * v, 3 * u * v * v, 3 * u * u * v, u * u * u
        e0, e3 = b0 + b1, b2 + b3
        rx = x - e0 * p0[pid, 0] - e3 * p3[pid, 0]
        ry = y - e0 * p0[pid, 1] - e3 * p3[pid, 1]
        c00 = np.add.reduceat(b1 * b1, first)
        c11 = np.add.reduceat(b2 * b2, first)
        c01 = np.add.reduceat(b1 * b2, first) * (t0 * t3).sum(1)
        r0 = np.add.reduceat(b1 * (rx * t0[pid, 0] + ry * t0[pid, 1]), first)
        r1 = np.add.reduceat(b2 * (rx * t3[pid, 0] + ry * t3[pid, 1]), first)
        det = c00 * c11 - c01 * c01
        sure = np.abs(det) > 1e-12
        det = np.where(sure, det, 1.0)
        l0 = np.where(sure, (r0 * c11 - r1 * c01) / det, -1.0)
        l3 = np.where(sure, (c00 * r1 - c01 * r0) / det, -1.0)
        poor = (np.minimum(l0, l3) < 1e-6 * chord) | (np.maximum(l0, l3) > arc)
        l0, l3 = np.where(poor, chord / 3, l0), np.where(poor, chord / 3, l3)
        p1, p2 = p0 + t0 * l0[:, None], p3 + t3 * l3[:, None]
        dx = b0 * p0[pid, 0] + b1 * p1[pid, 0] + b2 * p2[pid, 0] + b3 * p3[pid, 0] - x
        dy = b0 * p0[pid, 1] + b1 * p1[pid, 1] + b2 * p2[pid, 1] + b3 * p3[pid, 1] - y
        d2 = dx * dx + dy * dy
        ends = np.concatenate([first, np.append(first[1:], len(d2)) - 1])
        d2[ends] = -1.0
        worst = np.maximum.reduceat(d2, first)
        hit = np.where(d2 == worst[pid], np.arange(len(d2)), len(d2))
        ctrl[live] = np.stack([p0, p1, p2, p3], 1)
        split[live] = a[live] + np.minimum.reduceat(hit, first) - first
        good = worst <= tol2
        ok[live[good]] = True
        more = ~good & (worst <= 4 * tol2)  # close: a Newton step on the parameters may do it
        if it == _MAX_NEWTON or not more.any():
            break
        ax, bx, cx = (p1 - p0)[pid] * 3, (p2 - p1)[pid] * 3, (p3 - p2)[pid] * 3
        q1 = v[:, None] ** 2 * ax + (2 * u * v)[:, None] * bx + u[:, None] ** 2 * cx
        q2 = 2 * (v[:, None] * (bx - ax) + u[:, None] * (cx - bx))
        num = dx * q1[:, 0] + dy * q1[:, 1]
        den = (q1 * q1).sum(1) + dx * q2[:, 0] + dy * q2[:, 1]
        step = np.divide(num, den, out=np.zeros_like(num), where=np.abs(den) > 1e-12)
        keep = more[pid]
        live, x, y = live[more], x[keep], y[keep]
        u = np.clip(u - step, 0.0, 1.0)[keep]
        pid, _, first = _groups(b[live] - a[live] + 1)
    return ctrl, ok, split


def _subpaths(seg_a: I64, ctrl: F64, e_owner: I64) -> list[Subpath]:
    order = np.argsort(seg_a, kind="stable")
    ctrl, loop = ctrl[order], e_owner[seg_a[order]]
    lens = np.bincount(loop)
    lens = lens[lens > 0]
    owner, pos, first = _groups(lens)
    prev = first[owner] + (pos - 1) % lens[owner]
    pre, anchor, leave = ctrl[prev, 2].tolist(), ctrl[:, 0].tolist(), ctrl[:, 1].tolist()
    knots = [
        Knot((p[0], p[1]), (q[0], q[1]), (r[0], r[1]))
        for p, q, r in zip(pre, anchor, leave, strict=True)
    ]
    return [
        Subpath(tuple(knots[f : f + n])) for f, n in zip(first.tolist(), lens.tolist(), strict=True)
    ]


def flatten(subpaths: Sequence[Subpath], tolerance: float = 0.1) -> list[F64]:
    """Each subpath as a polyline (k, 2) within ``tolerance`` px of the curves."""
    out: list[F64] = []
    for sp in subpaths:
        segs = sp.segments()
        if not len(segs):
            continue
        dd = np.maximum(
            np.abs(segs[:, 0] - 2 * segs[:, 1] + segs[:, 2]).max(axis=1),
            np.abs(segs[:, 1] - 2 * segs[:, 2] + segs[:, 3]).max(axis=1),
        )
        steps = np.clip(np.ceil(np.sqrt(0.75 * dd * math.sqrt(2) / tolerance)), 1, 256)
        owner, i, _ = _groups(steps.astype(np.int64))
        u = i / steps[owner]
        v = 1.0 - u
        b = np.stack([v * v * v, 3 * u * v * v, 3 * u * u * v, u * u * u], axis=1)
        pts = np.einsum("ij,ijk->ik", b, segs[owner])
        if not sp.closed:
            pts = np.vstack([pts, segs[-1, 3:4]])
        out.append(pts)
    return out


def rasterize(subpaths: Sequence[Subpath], width: int, height: int) -> U8:
    """Fill with the even-odd rule, sampling pixel centres: 255 inside, 0 outside."""
    polys = flatten(subpaths)
    if not polys:
        return np.zeros((height, width), np.uint8)
    a = np.concatenate(polys)
    b = np.concatenate([np.roll(p, -1, axis=0) for p in polys])
    y0, y1 = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    first = np.clip(np.ceil(y0 - 0.5), 0, height).astype(np.int64)
    last = np.clip(np.ceil(y1 - 0.5), 0, height).astype(np.int64)  # exclusive
    edge, i, _ = _groups(np.maximum(last - first, 0))
    row = first[edge] + i
    ya, yb = a[edge, 1], b[edge, 1]
    t = (row + 0.5 - ya) / (yb - ya)
    x = a[edge, 0] + t * (b[edge, 0] - a[edge, 0])
    col = np.clip(np.ceil(x - 0.5), 0, width).astype(np.int64)
    flips = np.bincount(row * (width + 1) + col, minlength=height * (width + 1))
    parity = np.cumsum((flips & 1).astype(np.uint8).reshape(height, width + 1), axis=1)
    return np.where(parity[:, :width] & 1, 255, 0).astype(np.uint8)


def _num(v: float) -> str:
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def svg_path_data(subpaths: Sequence[Subpath]) -> str:
    """The SVG ``d`` attribute: ``M … C …`` per subpath (``L`` for straight segments)."""
    parts: list[str] = []
    for sp in subpaths:
        segs = sp.segments()
        if not sp.knots:
            continue
        x, y = sp.knots[0].anchor
        parts.append(f"M{_num(x)} {_num(y)}")
        for s in segs:
            end = f"{_num(s[3, 0])} {_num(s[3, 1])}"
            if np.array_equal(s[0], s[1]) and np.array_equal(s[2], s[3]):
                parts.append(f"L{end}")
            else:
                c = " ".join(f"{_num(s[i, 0])} {_num(s[i, 1])}" for i in (1, 2))
                parts.append(f"C{c} {end}")
        if sp.closed:
            parts.append("Z")
    return " ".join(parts)


def to_svg(subpaths: Sequence[Subpath], width: int, height: int) -> bytes:
    """A standalone SVG of the shape: one even-odd ``<path>`` in pixel units."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<path fill-rule="evenodd" d="{svg_path_data(subpaths)}"/></svg>\n'
    ).encode()
