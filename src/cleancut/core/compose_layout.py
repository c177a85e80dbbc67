"""Where the subject goes on the output canvas: trim, margin, scale and position.

``plan`` turns a ``Layout`` into a ``Placement`` (pure geometry); ``place`` moves the
subject's colour and alpha onto the canvas. Two modes:

* **window** (no ``scale``/``position``): the canvas is a window on the source, the whole
  image (no trim) or the subject's box plus margin (trim). Everything inside the window
  is kept, and with neither trim nor margin the input arrays are returned untouched.
* **moved** (``scale`` or ``position`` set): only the subject's box is taken, resampled
  by the scale factor (premultiplied, so no background colour bleeds into the edge) and
  pasted at ``position``, as fractions of the free space (remove.bg's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from cleancut.core.types import U8, Layout
from cleancut.errors import InvalidOptions

#: (left, top, width, height) in pixels.
Box = tuple[int, int, int, int]

#: Alpha (0..255) at or below which a pixel does not count towards the subject's box:
#: low enough to keep every visible edge pixel, high enough to ignore faint matte noise.
TRIM_THRESHOLD = 8


@dataclass(frozen=True)
class Placement:
    source_size: tuple[int, int]  # (w, h) of the input
    canvas: tuple[int, int]  # (w, h) of the output
    #: the canvas's top-left corner in source pixels (negative where a margin reaches
    #: beyond the image); the background of blur effects is taken from there
    origin: tuple[int, int]
    box: Box | None  # the subject's box in the source; None when there is no subject
    dest: Box | None  # the subject's box on the canvas
    moved: bool  # True: only ``box`` is resampled into ``dest``; False: a window copy

    @property
    def identity(self) -> bool:
        return not self.moved and self.origin == (0, 0) and self.canvas == self.source_size


def subject_box(alpha: U8, threshold: int = TRIM_THRESHOLD) -> Box | None:
    """The tight box of the pixels with alpha above ``threshold``, or None."""
    _, mask = cv2.threshold(alpha, threshold, 255, cv2.THRESH_BINARY)
    x, y, w, h = cv2.boundingRect(mask)
    return (int(x), int(y), int(w), int(h)) if w > 0 and h > 0 else None


def plan(alpha: U8, layout: Layout, max_pixels: int) -> Placement:
    """The output geometry; raises InvalidOptions when the canvas would be too large.

    A percentage margin is relative to the subject's size on each axis (left/right of its
    width, top/bottom of its height), as remove.bg's ``crop_margin``. With no subject the
    canvas stays the input's size and scale/position do nothing.
    """
    size = (int(alpha.shape[1]), int(alpha.shape[0]))
    box = subject_box(alpha)
    if box is None:
        return Placement(size, size, (0, 0), None, None, moved=False)
    bx, by, bw, bh = box
    if layout.trim:
        mx = round(layout.margin.pixels(bw))
        my = round(layout.margin.pixels(bh))
        origin, canvas = (bx - mx, by - my), (bw + 2 * mx, bh + 2 * my)
    else:
        origin, canvas = (0, 0), size
    cw, ch = canvas
    if cw * ch > max_pixels:
        raise InvalidOptions(
            f"the output canvas would be {cw}x{ch} pixels, over the limit of {max_pixels}",
            hint="use a smaller margin",
        )
    if layout.scale is None and layout.position is None:
        dest = (bx - origin[0], by - origin[1], bw, bh)
        return Placement(size, canvas, origin, box, dest, moved=False)
    factor = 1.0 if layout.scale is None else layout.scale * min(cw / bw, ch / bh)
    dw = min(cw, max(1, round(bw * factor)))
    dh = min(ch, max(1, round(bh * factor)))
    px, py = layout.position if layout.position is not None else (0.5, 0.5)
    dest = (round(px * (cw - dw)), round(py * (ch - dh)), dw, dh)
    return Placement(size, canvas, origin, box, dest, moved=True)


def place(colour: U8, alpha: U8, placement: Placement) -> tuple[U8, U8]:
    """The subject's colour (H×W×3) and alpha (H×W) on the canvas.

    With an identity placement these are the input arrays themselves (no copy).
    """
    if placement.identity:
        return colour, alpha
    if not placement.moved:
        return window(colour, placement), window(alpha, placement)
    cw, ch = placement.canvas
    fg = np.zeros((ch, cw, 3), np.uint8)
    fa = np.zeros((ch, cw), np.uint8)
    assert placement.box is not None and placement.dest is not None
    bx, by, bw, bh = placement.box
    dx, dy, dw, dh = placement.dest
    crop_c = colour[by : by + bh, bx : bx + bw]
    crop_a = alpha[by : by + bh, bx : bx + bw]
    if (dw, dh) != (bw, bh):
        crop_c, resized = resize_premultiplied(crop_c, crop_a, (dw, dh))
        assert resized is not None
        crop_a = resized
    fg[dy : dy + dh, dx : dx + dw] = crop_c
    fa[dy : dy + dh, dx : dx + dw] = crop_a
    return fg, fa


def window(image: U8, placement: Placement) -> U8:
    """The canvas's window on a source-sized array; zeros where it reaches past the edge."""
    w, h = placement.source_size
    ox, oy = placement.origin
    cw, ch = placement.canvas
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + cw, w), min(oy + ch, h)
    out = np.zeros((ch, cw, *image.shape[2:]), np.uint8)
    if x1 > x0 and y1 > y0:
        out[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = image[y0:y1, x0:x1]
    return out


def resize_premultiplied(rgb: U8, alpha: U8 | None, size: tuple[int, int]) -> tuple[U8, U8 | None]:
    """Resize colour and alpha to ``size`` (w, h), averaging colour weighted by alpha.

    Resizing straight colour would mix in whatever colour transparent pixels hold; area
    averaging shrinks, bicubic enlarges (its overshoot is clipped).
    """
    shrinking = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    if alpha is None:
        return np.asarray(cv2.resize(rgb, size, interpolation=interp), np.uint8), None
    # Exact 16-bit integers: colour × alpha and alpha × 255 share one scale, so their
    # ratio after resizing is the colour again (OpenCV's divide rounds, and gives 0
    # where the alpha is 0).
    a16 = alpha.astype(np.uint16) * np.uint16(255)
    premul = cv2.multiply(rgb, cv2.merge([alpha, alpha, alpha]), dtype=cv2.CV_16U)
    a_r = cv2.resize(a16, size, interpolation=interp)
    p_r = cv2.resize(premul, size, interpolation=interp)
    colour = cv2.divide(p_r, cv2.merge([a_r, a_r, a_r]), scale=255, dtype=cv2.CV_8U)
    out_a = cv2.convertScaleAbs(a_r, alpha=1 / 255)
    return np.asarray(colour, np.uint8), np.asarray(out_a, np.uint8)


def check_layout(layout: Layout) -> None:
    margin = layout.margin
    if margin.unit not in ("px", "%"):
        raise InvalidOptions(f"margin unit must be 'px' or '%', got {margin.unit!r}")
    if not math.isfinite(margin.value) or margin.value < 0:
        raise InvalidOptions(f"margin must be a finite value >= 0, got {margin.value!r}")
    if layout.scale is not None and not (0.0 < layout.scale <= 1.0):
        raise InvalidOptions(f"scale must be in (0, 1], got {layout.scale!r}")
    if layout.position is not None:
        pos = tuple(layout.position)
        if len(pos) != 2 or not all(0.0 <= v <= 1.0 for v in pos):
            raise InvalidOptions(f"position must be two fractions in [0, 1], got {pos!r}")
