"""Background layers and the drop shadow, each built at the canvas size.

Large Gaussian blurs are computed at reduced resolution (area-downsample so the blur is
about ``_SMALL_SIGMA`` pixels there, blur, bilinear-upsample): indistinguishable from a
full-resolution blur for sigmas above a few pixels, and hundreds of times cheaper.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from cleancut.core import io
from cleancut.core.compose_layout import Placement, resize_premultiplied
from cleancut.core.types import F32, RGBA, U8, Shadow
from cleancut.errors import CleancutError

#: Gaussian sigma, in pixels, of the reduced-resolution blur.
_SMALL_SIGMA: Final = 3.0
#: Blur background: sigma = intensity × this × the image's longer side, so 100 gives 3 %.
BLUR_SIGMA_PER_INTENSITY: Final = 0.0003
#: Blur background: the subject (alpha above ``_BACKGROUND_ALPHA``) is grown by this
#: fraction of the longer side before it is cut out of the background, so its soft edge
#: (whose colour is part subject) cannot bleed into the blurred background.
_HALO_GROW: Final = 0.002
#: Blur background: pixels with alpha above this count as subject (as for trimming).
_BACKGROUND_ALPHA: Final = 8
#: Gradient look-up table size: colour error < 0.25 of a level.
_LUT_SIZE: Final = 1024


def solid(size: tuple[int, int], color: RGBA) -> U8:
    """A canvas of one colour: H×W×3 when opaque, else H×W×4 (straight alpha)."""
    w, h = size
    channels = 3 if color[3] == 255 else 4
    if color[3] == 0:
        color = (0, 0, 0, 0)  # fully transparent pixels carry no colour
    out = np.empty((h, w, channels), np.uint8)
    # Assigning one broadcast row is ~20x faster than assigning a tuple per pixel.
    out[:] = np.tile(np.asarray(color[:channels], np.uint8), (w, 1))
    return out


def gradient(size: tuple[int, int], start: RGBA, end: RGBA, angle: float) -> U8:
    """A CSS ``linear-gradient(angle, start, end)`` filling the canvas.

    0deg runs from ``start`` at the bottom to ``end`` at the top, 90deg left to right,
    180deg top to bottom. The gradient line passes through the centre and is as long as
    CSS makes it, ``|w sin a| + |h cos a|``, so the corners get the pure end colours.
    Colours are interpolated premultiplied, as CSS does, so a fade to transparent does not
    turn grey. Each pixel reads a 1024-entry table indexed by its position on the line.
    """
    w, h = size
    rad = math.radians(angle)
    dx, dy = math.sin(rad), -math.cos(rad)  # direction in image coordinates (y down)
    length = abs(w * dx) + abs(h * dy)
    scale = (_LUT_SIZE - 1) / length
    tx = np.rint((np.arange(w) + 0.5 - w / 2) * dx * scale).astype(np.int16)
    ty = np.rint(((np.arange(h) + 0.5 - h / 2) * dy + length / 2) * scale).astype(np.int16)
    index = ty[:, np.newaxis] + tx[np.newaxis, :]
    np.clip(index, 0, _LUT_SIZE - 1, out=index)
    table = _gradient_table(start, end)
    packed = np.take(table.view(np.uint32).ravel(), index)
    out: U8 = packed.view(np.uint8).reshape(h, w, 4)
    if start[3] == 255 and end[3] == 255:
        return np.asarray(cv2.cvtColor(out, cv2.COLOR_RGBA2RGB), np.uint8)
    return out


def _gradient_table(start: RGBA, end: RGBA) -> U8:
    t = np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float32)[:, np.newaxis]
    c0, c1 = np.asarray(start, np.float32), np.asarray(end, np.float32)
    a = c0[3] + (c1[3] - c0[3]) * t
    premul = c0[:3] * c0[3] + (c1[:3] * c1[3] - c0[:3] * c0[3]) * t
    colour = np.where(a > 0, premul / np.maximum(a, 1e-6), 0.0)
    table = np.concatenate([colour, a], axis=1)
    return np.ascontiguousarray(np.clip(table + 0.5, 0, 255).astype(np.uint8))


def blur_sigma(intensity: float, size: tuple[int, int]) -> float:
    return intensity * BLUR_SIGMA_PER_INTENSITY * max(size)


def blurred_background(rgb: U8, alpha: U8, intensity: float, placement: Placement) -> U8:
    """The original background, blurred, without the subject (H×W×3 canvas).

    Normalised convolution: colours are blurred weighted by "is background" (outside the
    slightly grown subject) and divided by the blurred weight, so the subject's region is
    filled from its surroundings and its colours never smear into the background. Where
    no background lies within reach, the weighted mean background colour is used.
    """
    sigma = blur_sigma(intensity, placement.source_size)
    ox, oy = placement.origin
    if sigma < 0.5:  # no blur: the original, edges replicated past the image
        return upsample(rgb, 1.0, 1.0, placement.canvas, shift=(-ox, -oy))
    grow = max(1, round(_HALO_GROW * max(placement.source_size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * grow + 1, 2 * grow + 1))
    # 255 = background: clear of any visible part of the subject by ``grow`` pixels.
    _, weight = cv2.threshold(
        cv2.dilate(alpha, kernel), _BACKGROUND_ALPHA, 255, cv2.THRESH_BINARY_INV
    )
    weights3 = cv2.merge([weight, weight, weight])
    premul = cv2.multiply(rgb, weights3, dtype=cv2.CV_16U)  # colour × weight, exact
    # The weight is scaled to colour × weight's range so one 16-bit resize keeps both exact.
    stack = cv2.merge([premul, weight.astype(np.uint16) * np.uint16(255)])
    small, fx, fy = blur_reduced(stack, sigma)
    num = small[..., :3]  # blurred colour × weight (weight 0..255)
    den = small[..., 3:] * np.float32(1 / 255)  # blurred weight
    sums = cv2.sumElems(small)
    if sums[3] > 0:
        fallback = np.asarray(sums[:3], np.float64) * 255 / sums[3]
    else:
        fallback = np.asarray(cv2.mean(rgb)[:3], np.float64)
    eps = np.float32(255 * 1e-3)  # 0.1 % of a full weight: a smooth switch to the fallback
    colour = (num + eps * fallback.astype(np.float32)) / (den + eps)
    small_u8 = np.asarray(cv2.convertScaleAbs(colour), np.uint8)  # rounds and saturates
    return upsample(small_u8, fx, fy, placement.canvas, shift=(-ox, -oy))


def blur_reduced(image: NDArray[Any], sigma: float) -> tuple[F32, float, float]:
    """Gaussian blur of ``image`` as float32, at reduced resolution when sigma is large.

    Returns the blurred image and its per-axis reduction factors (full / reduced size).
    """
    h, w = image.shape[:2]
    k = sigma / _SMALL_SIGMA
    if k <= 1.0:
        full = np.asarray(image, np.float32)
        out = cv2.GaussianBlur(full, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        return np.asarray(out, np.float32), 1.0, 1.0
    sw, sh = max(1, round(w / k)), max(1, round(h / k))
    small = np.asarray(cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA), np.float32)
    fx, fy = w / sw, h / sh
    # The area filter and the bilinear upsampling add about k²/4 of variance between
    # them; take it off so the result matches a full-resolution blur of ``sigma``.
    rest = math.sqrt(max(sigma * sigma - 0.25 * fx * fy, 0.25)) / math.sqrt(fx * fy)
    out = cv2.GaussianBlur(small, (0, 0), rest, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(out, np.float32), fx, fy


def upsample(
    small: U8, fx: float, fy: float, size: tuple[int, int], shift: tuple[float, float]
) -> U8:
    """Bilinear map of a reduced image onto a canvas of ``size`` (w, h), where canvas
    pixel (x, y) shows full-resolution pixel (x - shift_x, y - shift_y); the borders
    are replicated."""
    sx, sy = shift
    inverse = np.array(
        [[1 / fx, 0.0, (0.5 - sx) / fx - 0.5], [0.0, 1 / fy, (0.5 - sy) / fy - 0.5]],
        np.float64,
    )
    full = (round(small.shape[1] * fx), round(small.shape[0] * fy))
    if shift == (0, 0) and size == full:  # cv2.resize uses the same pixel-centre mapping
        return np.asarray(cv2.resize(small, size, interpolation=cv2.INTER_LINEAR), np.uint8)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = cv2.warpAffine(small, inverse, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, np.uint8)


def image_background(
    data: bytes, size: tuple[int, int], fit: Literal["fill", "fit"], max_pixels: int
) -> U8:
    """A decoded image centred on the canvas: ``fill`` covers it (cropping the overflow),
    ``fit`` fits inside it, leaving transparent bars. H×W×4 when any pixel is not opaque."""
    try:
        image = io.decode(data, max_pixels=max_pixels)
    except CleancutError as exc:
        raise type(exc)(f"background image: {exc.message}", hint=exc.hint) from exc
    iw, ih = image.size
    cw, ch = size
    pick = max if fit == "fill" else min
    factor = pick(cw / iw, ch / ih)
    nw, nh = max(1, round(iw * factor)), max(1, round(ih * factor))
    if fit == "fill":
        nw, nh = max(nw, cw), max(nh, ch)
    alpha = image.alpha if image.alpha is not None and image.alpha.min() < 255 else None
    if (nw, nh) == (iw, ih):
        rgb, a = image.rgb, alpha
    else:
        rgb, a = resize_premultiplied(image.rgb, alpha, (nw, nh))
    x0, y0 = (nw - cw) // 2, (nh - ch) // 2  # negative: bars
    if x0 >= 0 and y0 >= 0:  # covers the canvas
        rgb = rgb[y0 : y0 + ch, x0 : x0 + cw]
        if a is None:
            # A copy: the canvas is painted on, and for a picture of the canvas's exact
            # size ``rgb`` is the decoded (read-only) array itself.
            return np.array(rgb, np.uint8, order="C")
        return _clear_hidden(cv2.merge([rgb, a[y0 : y0 + ch, x0 : x0 + cw]]))
    out = np.zeros((ch, cw, 4), np.uint8)
    rgba = (
        cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA) if a is None else _clear_hidden(cv2.merge([rgb, a]))
    )
    out[-y0 : -y0 + nh, -x0 : -x0 + nw] = rgba
    return out


def _clear_hidden(rgba: NDArray[Any]) -> U8:
    """RGB 0 where alpha is 0: fully transparent pixels carry no colour."""
    _, visible = cv2.threshold(rgba[..., 3].copy(), 0, 255, cv2.THRESH_BINARY)
    return np.asarray(cv2.bitwise_and(rgba, rgba, mask=visible), np.uint8)


def drop_shadow(alpha: U8, placement: Placement, shadow: Shadow) -> U8 | None:
    """The shadow's alpha on the canvas, or None when there is none to draw.

    The subject's matte, shifted by ``offset`` (% of the subject's width and height),
    blurred with sigma = ``softness`` % of its height and scaled by ``opacity``: dense
    right under the subject and fading smoothly outwards, like a soft light's shadow.
    Only the subject's neighbourhood is blurred, with edges replicated, so a subject cut
    off by the frame casts a shadow that continues past it too.
    """
    if not shadow.enabled or shadow.opacity <= 0 or placement.dest is None:
        return None
    _, _, dw, dh = placement.dest
    sigma = shadow.softness / 100.0 * dh
    reach = math.ceil(4 * sigma) + 2
    x, y, w, h = cv2.boundingRect(alpha)
    h_img, w_img = alpha.shape
    x0, y0 = max(0, x - reach), max(0, y - reach)
    x1, y1 = min(w_img, x + w + reach), min(h_img, y + h + reach)
    crop = alpha[y0:y1, x0:x1]
    if sigma >= 0.3:
        small, fx, fy = blur_reduced(crop, sigma)
    else:
        small, fx, fy = crop.astype(np.float32), 1.0, 1.0
    small_u8 = np.clip(small * (shadow.opacity / 100.0) + 0.5, 0, 255).astype(np.uint8)
    shift = (x0 + shadow.offset[0] / 100.0 * dw, y0 + shadow.offset[1] / 100.0 * dh)
    return upsample(small_u8, fx, fy, placement.canvas, shift=shift)
