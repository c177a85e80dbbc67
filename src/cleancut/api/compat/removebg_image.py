"""The pixel work remove.bg's contract needs around a job, kept small and out of the router:

* :func:`prepare_input` — the job's input. remove.bg's ``size`` caps the result's pixel count
  and its ``roi`` says that nothing outside a rectangle may be foreground. The core has
  neither option, so both become an *input transform*: the image is scaled to the size's
  pixel budget and made transparent outside the roi. The pipeline shows transparent source
  pixels to the model as plain white and multiplies the matte by the source's alpha, so
  outside the roi nothing is foreground and the model sees nothing there to segment, which
  is remove.bg's documented meaning of ``roi``. The output keeps the whole canvas. With
  neither option in play the upload goes to the job untouched.
* :func:`foreground` — the ``X-Foreground-*`` box and ``X-Width``/``X-Height``, from the job's
  stored matte and the same layout plan the core used to render the result.
* :func:`zip_parts` — ``format=zip``: ``color.jpg`` + ``alpha.png`` from the PNG cut-out.
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile

import numpy as np
from PIL import Image

from cleancut.api.compat.removebg_params import Length, Params
from cleancut.core import compose_layout
from cleancut.core.io import decode, encode
from cleancut.core.types import U8, Options
from cleancut.jobs.blobs import decode_mask
from cleancut.jobs.inspect import probe

Box = tuple[int, int, int, int]  # left, top, width, height


def prepare_input(data: bytes, params: Params, max_pixels: int) -> bytes:
    """What the job gets: ``data`` itself, or a PNG scaled within the size's pixel budget
    and transparent outside the roi (see the module docstring)."""
    probe(data, max_pixels)  # unsupported, broken or oversized input fails here, cheaply
    budget = params.pixel_budget()
    header = _header_size(data)
    if params.roi is None and header is not None and header[0] * header[1] <= budget:
        return data
    image = decode(data, max_pixels=max_pixels)
    rgb, alpha = image.rgb, image.alpha
    width, height = image.size
    if params.roi is not None:
        inside = np.zeros((height, width), np.uint8)
        x0, y0, x1, y1 = roi_box(params.roi, width, height)
        inside[y0:y1, x0:x1] = 255
        alpha = inside if alpha is None else np.minimum(alpha, inside)
    if width * height > budget:
        factor = math.sqrt(budget / (width * height))
        size = (max(1, int(width * factor)), max(1, int(height * factor)))
        rgb, alpha = compose_layout.resize_premultiplied(rgb, alpha, size)
    pixels: U8 = rgb if alpha is None else np.dstack([rgb, alpha])
    return encode(pixels, "png")


def roi_box(roi: tuple[Length, Length, Length, Length], width: int, height: int) -> Box:
    """The roi's corners ``(x0, y0, x1, y1)`` in pixels, clipped to the image."""

    def px(length: Length, reference: int) -> int:
        value, unit = length
        pixels = value * reference / 100.0 if unit == "%" else value
        return min(reference, max(0, round(pixels)))

    (ax, ay), (bx, by) = (
        (px(roi[0], width), px(roi[1], height)),
        (px(roi[2], width), px(roi[3], height)),
    )
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _header_size(data: bytes) -> tuple[int, int] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Exception:  # a format Pillow cannot open lazily: decode it instead
        return None


def foreground(mask_png: bytes, options: Options) -> tuple[tuple[int, int], Box | None]:
    """The result's (width, height) and the subject's box on it (None: no foreground)."""
    alpha = decode_mask(mask_png)
    placement = compose_layout.plan(alpha, options.layout, options.max_pixels)
    return placement.canvas, placement.dest


def zip_parts(cutout_png: bytes, quality: int = 90) -> bytes:
    """remove.bg's ZIP: the colour as ``color.jpg`` and the alpha matte as ``alpha.png``."""
    with Image.open(io.BytesIO(cutout_png), formats=["PNG"]) as img:
        rgba = np.asarray(img.convert("RGBA"))
    color = encode(np.ascontiguousarray(rgba[..., :3]), "jpeg", quality=quality)
    alpha = encode(np.ascontiguousarray(rgba[..., 3]), "png")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("color.jpg", color)
        archive.writestr("alpha.png", alpha)
    return buf.getvalue()
