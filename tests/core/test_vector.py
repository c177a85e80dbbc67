from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from cleancut.core import vector
from cleancut.core.vector import Knot, Subpath
from cleancut.errors import InvalidInput, InvalidOptions


def iou(a: np.ndarray, b: np.ndarray) -> float:
    fa, fb = a >= 128, b >= 128
    return float((fa & fb).sum() / max((fa | fb).sum(), 1))


def disc(h: int, w: int, cx: float, cy: float, r: float, *, soft: bool = True) -> np.ndarray:
    """A disc with anti-aliased (about one pixel wide) or hard edges, as the model would give."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    d = np.hypot(xx - cx, yy - cy)
    if not soft:
        return np.where(d < r, 255, 0).astype(np.uint8)
    return (np.clip(r - d + 0.5, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def signed_area(sp: Subpath) -> float:
    pts = vector.flatten([sp])[0]
    x, y = pts[:, 0], pts[:, 1]
    return float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum() / 2)


@pytest.mark.parametrize("soft", [True, False])
def test_disc(soft: bool) -> None:
    mask = disc(256, 300, 151.3, 120.7, 80, soft=soft)
    paths = vector.trace(mask)
    assert len(paths) == 1 and paths[0].closed
    assert 4 <= len(paths[0].knots) <= 12  # smooth curves, not a polygon
    assert iou(vector.rasterize(paths, 300, 256), mask) >= 0.99
    if soft:
        assert all(k.linked for k in paths[0].knots)  # no corners on a circle
        # Anchors sit on the 50 % iso-line, i.e. on the circle, to well under a pixel.
        r = [np.hypot(k.anchor[0] - 151.3, k.anchor[1] - 120.7) for k in paths[0].knots]
        assert max(abs(v - 80) for v in r) < 0.15


@pytest.mark.parametrize("soft", [True, False])
def test_ring_keeps_its_hole(soft: bool) -> None:
    mask = disc(256, 256, 128, 128, 90, soft=soft)
    hole = disc(256, 256, 128, 128, 40, soft=soft)
    mask = np.minimum(mask, 255 - hole)
    paths = vector.trace(mask)
    assert len(paths) == 2  # the object, then its hole
    raster = vector.rasterize(paths, 256, 256)
    assert raster[128, 128] == 0 and raster[128, 128 - 60] == 255
    assert iou(raster, mask) >= (0.99 if soft else 0.98)
    # Outer and hole run opposite ways, so non-zero filling also leaves the hole open.
    assert signed_area(paths[0]) * signed_area(paths[1]) < 0
    assert abs(signed_area(paths[0])) > abs(signed_area(paths[1]))


def test_square_corners_stay_sharp() -> None:
    mask = np.zeros((100, 120), np.uint8)
    mask[20:70, 30:90] = 255
    (path,) = vector.trace(mask)
    assert sorted(k.anchor for k in path.knots) == [(30, 20), (30, 70), (90, 20), (90, 70)]
    for k in path.knots:  # corners: handles on the anchor, not linked
        assert k.preceding == k.anchor == k.leaving and not k.linked
    assert iou(vector.rasterize([path], 120, 100), mask) == 1.0


def test_soft_square_corners_and_subpixel_edges() -> None:
    # Edges at x = 20.25 and 80.75, y = 10.5 and 60.25, anti-aliased by area coverage.
    xs, ys = np.arange(100) + 0.5, np.arange(80) + 0.5
    cover_x = np.clip(np.minimum(xs + 0.5 - 20.25, 80.75 - (xs - 0.5)), 0, 1)
    cover_y = np.clip(np.minimum(ys + 0.5 - 10.5, 60.25 - (ys - 0.5)), 0, 1)
    mask = (np.outer(cover_y, cover_x) * 255 + 0.5).astype(np.uint8)
    (path,) = vector.trace(mask)
    assert len(path.knots) == 4
    want = [(20.25, 10.5), (20.25, 60.25), (80.75, 10.5), (80.75, 60.25)]
    for got, exp in zip(sorted(k.anchor for k in path.knots), want, strict=True):
        # Linear interpolation between pixel centres is off by < 0.1 px on a 1 px ramp.
        assert got == pytest.approx(exp, abs=0.1)


def test_threshold_picks_the_iso_line() -> None:
    ramp = np.tile(np.linspace(255, 0, 52)[1:-1], (40, 1)).round().astype(np.uint8)  # 50 wide
    mask = np.pad(ramp, ((10, 10), (10, 40)), constant_values=0)
    mask[:, :10] = 255
    for threshold in (0.25, 0.5, 0.75):
        (path,) = vector.trace(mask, threshold=threshold)
        right = max(k.anchor[0] for k in path.knots)
        # Pixel x holds 255 * (1 - (x - 9) / 51) at its centre x + 0.5; the path follows the
        # level between the last value kept (>= round(255 t)) and the first dropped.
        level = round(255 * threshold) - 0.5
        expect = 9 + 51 * (1 - level / 255) + 0.5
        assert right == pytest.approx(expect, abs=0.1)


def test_multiple_objects_and_nesting() -> None:
    mask = np.zeros((200, 300), np.uint8)
    mask = np.maximum(mask, disc(200, 300, 60, 60, 40))
    mask = np.maximum(mask, disc(200, 300, 220, 140, 50))
    mask[120:190, 20:120] = 255  # a frame ...
    mask[140:170, 40:100] = 0
    mask[150:160, 60:80] = 255  # ... with an island in its hole
    paths = vector.trace(mask)
    assert len(paths) == 5  # disc, disc, frame, its hole, the island
    assert iou(vector.rasterize(paths, 300, 200), mask) >= 0.99
    holes = [p for p in paths if signed_area(p) > 0]
    assert len(holes) == 1  # objects share one orientation, holes the other


def test_empty_and_full_masks() -> None:
    assert vector.trace(np.zeros((40, 50), np.uint8)) == []
    assert vector.trace(np.full((40, 50), 100, np.uint8)) == []  # all under the threshold
    (full,) = vector.trace(np.full((40, 50), 255, np.uint8))
    assert sorted(k.anchor for k in full.knots) == [(0, 0), (0, 40), (50, 0), (50, 40)]
    assert vector.rasterize([full], 50, 40).min() == 255
    assert vector.rasterize([], 5, 4).max() == 0


def test_min_area_drops_specks_and_pinholes() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[10:60, 10:60] = 255
    mask[30:32, 30:32] = 0  # a 4 px pinhole
    mask[80:82, 80:82] = 255  # a 4 px speck
    mask[80:86, 10:16] = 255  # a 36 px blob
    assert len(vector.trace(mask)) == 2
    assert len(vector.trace(mask, min_area=0)) == 4


def test_invalid_arguments() -> None:
    with pytest.raises(InvalidInput):
        vector.trace(np.zeros((4, 4), np.float32))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        vector.trace(np.zeros((4, 4, 3), np.uint8))
    for kwargs in ({"threshold": 0.0}, {"smoothness": 0.0}, {"min_area": -1.0}):
        with pytest.raises(InvalidOptions):
            vector.trace(np.zeros((4, 4), np.uint8), **kwargs)  # type: ignore[arg-type]


def _parse_svg_path(d: str) -> list[Subpath]:
    """Enough of an SVG path parser to read back what to_svg writes (M, C, L, Z)."""
    out: list[Subpath] = []
    segs: list[list[tuple[float, float]]] = []
    for cmd, args in re.findall(r"([MCLZ])([^MCLZ]*)", d):
        nums = [float(v) for v in args.split()]
        pts = list(zip(nums[::2], nums[1::2], strict=True))
        if cmd == "M":
            start, segs = pts[0], []
        elif cmd in "CL":
            p0 = segs[-1][3] if segs else start
            segs.append([p0, *pts] if cmd == "C" else [p0, p0, pts[0], pts[0]])
        else:
            out.append(Subpath(tuple(Knot(segs[i - 1][2], s[0], s[1]) for i, s in enumerate(segs))))
    return out


def test_svg_round_trip() -> None:
    mask = np.minimum(disc(120, 160, 80, 60, 50), 255 - disc(120, 160, 80, 60, 20))
    mask[5:25, 5:40] = 255
    paths = vector.trace(mask)
    svg = vector.to_svg(paths, 160, 120)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 160 120"
    (path,) = root
    assert path.get("fill-rule") == "evenodd"
    d = path.get("d") or ""
    assert d.count("M") == len(paths) == d.count("Z") == 3
    assert "C" in d and "L" in d  # curves for the ring, lines for the rectangle
    back = _parse_svg_path(d)
    assert iou(vector.rasterize(back, 160, 120), vector.rasterize(paths, 160, 120)) > 0.999


def test_rasterize_flattens_curves_and_open_paths() -> None:
    # A circle of radius 30 as four cubic arcs (handle 0.5523 r): area within 0.5 %.
    c, r, h = 40.0, 30.0, 30.0 * 0.5523
    knots = (
        Knot((c + h, c - r), (c, c - r), (c - h, c - r)),
        Knot((c - r, c - h), (c - r, c), (c - r, c + h)),
        Knot((c - h, c + r), (c, c + r), (c + h, c + r)),
        Knot((c + r, c + h), (c + r, c), (c + r, c - h)),
    )
    area = int((vector.rasterize([Subpath(knots)], 80, 80) > 0).sum())
    assert area == pytest.approx(np.pi * r * r, rel=0.005)
    # An open subpath is closed by the fill, as in every renderer.
    tri = Subpath(tuple(Knot(p, p, p) for p in [(0, 0), (10.2, 0), (0, 10.2)]), closed=False)
    assert int(vector.rasterize([tri], 12, 12).astype(bool).sum()) == 55  # x + y + 1 < 10.2


def test_trace_is_fast_on_12_megapixels() -> None:
    h, w = 3000, 4000
    theta = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    radius = 1100 * (1 + 0.08 * np.sin(5 * theta) + 0.03 * np.sin(23 * theta))
    outline = np.stack([2000 + radius * np.cos(theta), 1500 + radius * np.sin(theta)], 1)
    big = np.zeros((h * 4 // 4, w), np.uint8)
    cv2.fillPoly(big, [outline.round().astype(np.int32)], 255)
    cv2.circle(big, (2000, 1500), 300, 0, -1)  # a hole
    for i in range(40):  # strands and specks around it
        cv2.line(big, (300 + 80 * i, 200), (350 + 80 * i, 500 + 5 * i), 255, 1 + i % 4)
    mask = cv2.GaussianBlur(big, (0, 0), 2.0)  # soft edges, as an upsampled matte has
    start = time.perf_counter()
    paths = vector.trace(mask)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"trace took {elapsed:.2f}s on 12 MP"
    assert len(paths) >= 30
    assert iou(vector.rasterize(paths, w, h), mask) >= 0.995
