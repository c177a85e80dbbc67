"""Compose the cut-out subject onto its output canvas.

Order: layout (trim, margin, scale, position) → drop shadow → background → output.
Compositing is straight-alpha "over" (Porter-Duff), computed per pixel in float32 only
where the result is a mix; pixels the subject covers fully are copied, and pixels it
does not touch keep the background. With opaque backgrounds the result is exactly
``round((fg·a + bg·(255 - a)) / 255)``, and over a transparent background the subject's
colour is kept as is at soft edges (no dark fringes).

The layers, bottom to top: background (``Background``), shadow (black, alpha from
``Shadow``), subject (``foreground`` colour when given, else ``rgb``, with ``alpha``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from cleancut.core import compose_effects as effects
from cleancut.core import compose_kernels as kernels
from cleancut.core import compose_layout as layout
from cleancut.core.compose_layout import Box, Placement
from cleancut.core.types import U8, Background, Options, Shadow
from cleancut.errors import InvalidInput, InvalidOptions

__all__ = ["Composite", "compose", "validate"]

_KINDS: Final = ("transparent", "color", "gradient", "blur", "image")
#: Pixels blended per step: bounds the float32 temporaries to a few tens of MB.
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class Composite:
    #: H×W×4 straight-alpha RGBA when the result has transparency, else H×W×3 RGB
    pixels: U8
    #: H×W: the subject's alpha on the output canvas (for masks and clipping paths); the
    #: shadow is not part of it. Without layout changes this is the input array itself.
    alpha: U8
    #: (left, top, width, height) of the subject on the canvas; (0, 0, 0, 0) if empty
    subject_box: Box

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    @property
    def has_alpha(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 4


def compose(rgb: U8, alpha: U8, options: Options, *, foreground: U8 | None = None) -> Composite:
    """Lay out the subject, add its shadow and put it over the background.

    ``rgb`` is the original image (the blur background is made from it), ``alpha`` the
    subject's matte and ``foreground`` the decontaminated subject colour, if any.
    Whether the result has an alpha channel depends on the background alone: always for
    ``transparent``, and for colours, gradients or images that are not fully opaque.
    """
    _check_arrays(rgb, alpha, foreground)
    validate(options)
    placement = layout.plan(alpha, options.layout, options.max_pixels)
    fg, fa = layout.place(rgb if foreground is None else foreground, alpha, placement)
    shadow = effects.drop_shadow(fa, placement, options.shadow)
    box = placement.dest or (0, 0, 0, 0)
    if options.background.kind == "transparent" and shadow is None:
        return Composite(pixels=cutout(fg, fa), alpha=fa, subject_box=box)
    canvas = _background(rgb, alpha, placement, options)
    if shadow is not None and options.background.kind == "transparent":
        canvas[..., 3] = shadow  # black shadow over nothing: its alpha alone
        shadow = None
    over(canvas, fg, fa, shadow)
    return Composite(pixels=canvas, alpha=fa, subject_box=box)


def cutout(fg: U8, fa: U8) -> U8:
    """The subject alone as straight RGBA: its own colour and alpha, RGB 0 where fully
    transparent (what ``over`` gives on an empty canvas, without the blending)."""
    return kernels.cutout(fg, fa)


def validate(options: Options) -> None:
    """Raise InvalidOptions for effect options out of range."""
    _check_background(options.background)
    _check_shadow(options.shadow)
    layout.check_layout(options.layout)
    if options.max_pixels <= 0:
        raise InvalidOptions(f"max_pixels must be positive, got {options.max_pixels!r}")


def _background(rgb: U8, alpha: U8, placement: Placement, options: Options) -> U8:
    """A fresh, writable canvas holding the background layer."""
    bg = options.background
    w, h = placement.canvas
    if bg.kind == "color":
        return effects.solid(placement.canvas, bg.color)
    if bg.kind == "gradient":
        return effects.gradient(placement.canvas, bg.color, bg.color2, bg.angle)
    if bg.kind == "blur":
        return effects.blurred_background(rgb, alpha, bg.blur, placement)
    if bg.kind == "image":
        assert bg.image is not None  # validate() checked it
        return effects.image_background(bg.image, placement.canvas, bg.fit, options.max_pixels)
    return np.zeros((h, w, 4), np.uint8)


def over(canvas: U8, fg: U8, fa: U8, shadow: U8 | None = None) -> None:
    """Composite a black ``shadow`` layer, then the subject (``fg``, ``fa``), over
    ``canvas`` in place.

    ``canvas`` is H×W×3 (opaque background) or H×W×4 (straight alpha). Only the subject's
    box is touched; within it, fully covered pixels are copied and only the partly
    covered ones are blended, in float32, a chunk at a time.
    """
    if shadow is not None:
        shade(canvas, shadow)
    x, y, w, h = _bounds(fa)
    if w == 0 or h == 0:
        return
    a = fa[y : y + h, x : x + w]
    f = fg[y : y + h, x : x + w]
    out = canvas[y : y + h, x : x + w]
    src = f if out.shape[2] == 3 else cv2.cvtColor(f, cv2.COLOR_RGB2RGBA)
    cv2.copyTo(src, _mask(a, 254), out)
    rows, cols = np.divmod(np.flatnonzero(cv2.inRange(a, 1, 254)), w)
    for start in range(0, rows.size, _CHUNK):
        r, c = rows[start : start + _CHUNK], cols[start : start + _CHUNK]
        out[r, c] = _blend(f[r, c], a[r, c], out[r, c])


def shade(canvas: U8, shadow: U8) -> None:
    """Put a black layer with alpha ``shadow`` over ``canvas`` in place, in exact
    8-bit integer maths: opaque colour × (1 - shadow); over transparency the shadow
    becomes semi-transparent black."""
    x, y, w, h = _bounds(shadow)
    if w == 0 or h == 0:
        return
    s = shadow[y : y + h, x : x + w]
    out = canvas[y : y + h, x : x + w]
    keep = cv2.bitwise_not(s)  # 255 - shadow alpha
    if out.shape[2] == 3:
        out[...] = cv2.multiply(out, cv2.merge([keep, keep, keep]), scale=1 / 255)
        return
    planes = cv2.split(out)
    # The background's share of the new alpha, and the new alpha itself.
    share = cv2.multiply(planes[3], keep, scale=1 / 255)
    alpha = cv2.add(s, share)
    alpha16 = alpha.astype(np.uint16)
    colour = [
        cv2.divide(cv2.multiply(plane, share, dtype=cv2.CV_16U), alpha16, dtype=cv2.CV_8U)
        for plane in planes[:3]
    ]
    out[...] = cv2.merge([*colour, alpha])


def _blend(cf: U8, af: U8, cb: U8) -> U8:
    """Straight-alpha over for N pixels: subject (cf N×3, af N) over the background
    cb (N×3 opaque, or N×4)."""
    a_f = af.astype(np.float32)[:, np.newaxis] * np.float32(1 / 255)
    colour_f = cf.astype(np.float32) * a_f
    if cb.shape[1] == 3:
        result = colour_f + cb.astype(np.float32) * (1 - a_f)
        out: U8 = np.clip(result + 0.5, 0, 255).astype(np.uint8)
        return out
    below = cb[:, 3:].astype(np.float32) * np.float32(1 / 255) * (1 - a_f)
    a_out = a_f + below
    premul = colour_f + cb[:, :3].astype(np.float32) * below
    colour = np.where(a_out > 0, premul / np.maximum(a_out, np.float32(1e-6)), np.float32(0))
    result = np.concatenate([colour, a_out * 255], axis=1)
    out_rgba: U8 = np.clip(result + 0.5, 0, 255).astype(np.uint8)
    return out_rgba


def _mask(x: U8, threshold: int) -> U8:
    """255 where ``x`` > ``threshold``, else 0."""
    return np.asarray(cv2.threshold(x, threshold, 255, cv2.THRESH_BINARY)[1], np.uint8)


def _bounds(x: U8) -> Box:
    """The box of the non-zero pixels of ``x``; width 0 when there are none."""
    left, top, width, height = cv2.boundingRect(x)
    return (int(left), int(top), int(width), int(height))


def _check_arrays(rgb: U8, alpha: U8, foreground: U8 | None) -> None:
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != 3
    ):
        raise InvalidInput(f"rgb must be an HxWx3 uint8 array, got {_describe(rgb)}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InvalidInput(f"the image is empty ({rgb.shape[1]}x{rgb.shape[0]})")
    if not isinstance(alpha, np.ndarray) or alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]:
        raise InvalidInput(
            f"alpha must be a uint8 array of shape {rgb.shape[:2]}, got {_describe(alpha)}"
        )
    if foreground is not None and (
        not isinstance(foreground, np.ndarray)
        or foreground.dtype != np.uint8
        or foreground.shape != rgb.shape
    ):
        raise InvalidInput(
            f"foreground must be a uint8 array of shape {rgb.shape}, got {_describe(foreground)}"
        )


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def _check_rgba(name: str, color: object) -> None:
    ok = (
        isinstance(color, tuple | list)
        and len(color) == 4
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
    )
    if not ok:
        raise InvalidOptions(
            f"background {name} must be four integers 0..255 (RGBA), got {color!r}"
        )


def _check_range(name: str, value: float, low: float, high: float) -> None:
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not (low <= value <= high):
        raise InvalidOptions(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")


def _check_background(bg: Background) -> None:
    if bg.kind not in _KINDS:
        raise InvalidOptions(f"background kind must be one of {', '.join(_KINDS)}; got {bg.kind!r}")
    _check_rgba("color", bg.color)
    _check_rgba("color2", bg.color2)
    if not isinstance(bg.angle, numbers.Real) or not math.isfinite(bg.angle):
        raise InvalidOptions(f"gradient angle must be a finite number of degrees, got {bg.angle!r}")
    _check_range("blur intensity", bg.blur, 0, 100)
    if bg.fit not in ("fill", "fit"):
        raise InvalidOptions(f"background fit must be 'fill' or 'fit', got {bg.fit!r}")
    if bg.kind == "image" and not bg.image:
        raise InvalidOptions("an image background needs the background image's bytes")


def _check_shadow(shadow: Shadow) -> None:
    _check_range("shadow opacity", shadow.opacity, 0, 100)
    _check_range("shadow softness", shadow.softness, 0, 100)
    offset = tuple(shadow.offset)
    if len(offset) != 2:
        raise InvalidOptions(f"shadow offset must be two percentages (x, y), got {offset!r}")
    for value in offset:
        _check_range("shadow offset", value, -100, 100)
