"""Encode 8-bit pixels (mask, RGB or straight-alpha RGBA) into image file bytes.

Images are built from bare arrays, so no EXIF or other source metadata can leak
into outputs; the only metadata written is the ICC profile the caller passes.
"""

from __future__ import annotations

import io
from typing import Any, Final, Literal

import numpy as np
from PIL import Image, features

from cleancut.core.io_encode_png import encode_png
from cleancut.core.types import RGB, U8
from cleancut.errors import (
    CleancutError,
    ImageTooLarge,
    InvalidInput,
    InvalidOptions,
    UnsupportedFormat,
)

#: Formats ``encode`` writes.
ENCODE_FORMATS: Final = frozenset({"png", "webp", "jpeg", "avif", "tiff"})

_ALIASES: Final = {"jpg": "jpeg", "tif": "tiff"}
_PIL_NAMES: Final = {
    "png": "PNG",
    "webp": "WEBP",
    "jpeg": "JPEG",
    "avif": "AVIF",
    "tiff": "TIFF",
}
# Hard limits of the formats themselves; checking first gives a clear error
# instead of an opaque encoder failure.
_MAX_SIDE: Final = {"webp": 16383, "jpeg": 65535}
# Rows composited at a time when flattening for JPEG: bounds the temporaries and
# keeps them cache-sized, which measured faster than whole-image passes.
_FLATTEN_BAND: Final = 256


def encode(
    pixels: U8,
    fmt: str,
    *,
    quality: int = 90,
    lossless: bool = True,
    background: RGB = (255, 255, 255),
    icc_profile: bytes | None = None,
    png_writer: Literal["fast", "pillow"] = "fast",
) -> bytes:
    """Encode ``pixels`` (HxW mask, HxWx3 RGB or HxWx4 straight RGBA) as ``fmt``.

    ``quality`` applies to JPEG, lossy WebP and AVIF; ``lossless`` only to WebP
    (PNG and TIFF are always lossless, AVIF always lossy). JPEG has no alpha, so
    RGBA is flattened onto ``background``. PNG goes through cleancut's own parallel
    writer (``io_encode_png``, several times faster on large images);
    ``png_writer="pillow"`` uses Pillow's encoder instead.
    """
    name = _ALIASES.get(fmt.lower(), fmt.lower())
    if name not in ENCODE_FORMATS:
        supported = ", ".join(sorted(ENCODE_FORMATS))
        raise UnsupportedFormat(f"cannot encode {fmt!r} (supported: {supported})")
    if name == "avif" and not features.check("avif"):
        raise UnsupportedFormat("this build of Pillow cannot encode avif")
    _validate(pixels, quality, background)
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    max_side = _MAX_SIDE.get(name)
    if max_side is not None and max(width, height) > max_side:
        raise ImageTooLarge(
            f"{name} images can be at most {max_side}x{max_side}, this one is {width}x{height}",
            hint="choose png or tiff for images this large",
        )

    if name == "png" and png_writer == "fast":
        return encode_png(pixels, icc_profile=icc_profile)
    if name == "jpeg" and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = flatten(pixels, background)
    img = Image.fromarray(np.ascontiguousarray(pixels))
    params = _params(name, quality=quality, lossless=lossless)
    if icc_profile:
        params["icc_profile"] = icc_profile

    buf = io.BytesIO()
    try:
        img.save(buf, format=_PIL_NAMES[name], **params)
    except (OSError, ValueError) as e:
        raise CleancutError(f"{name} encoder failed: {e}") from e
    return buf.getvalue()


def _params(name: str, *, quality: int, lossless: bool) -> dict[str, Any]:
    match name:
        case "png":
            # Only when asked for Pillow's writer. optimize=True searches every filter
            # and takes many seconds on large images for a few percent; level 6 is
            # zlib's own speed/size balance.
            return {"compress_level": 6}
        case "webp" if lossless:
            # In lossless mode quality and method only set effort, never pixels. Method 0
            # (libwebp's fastest preset, -z 0) took 1.6 s on a 12 MP cut-out against 5.5 s
            # for method 1 at quality 20, for files 15 % larger (still about a quarter
            # smaller than our PNG). RGB under fully transparent pixels may be rewritten
            # (exact=False): invisible, but smaller. See docs/benchmarks.md ("Speed").
            return {"lossless": True, "quality": 0, "method": 0}
        case "webp":
            # Method 0 took 2.5 s on a 12 MP cut-out where methods 1 and 4 took 7.2 and
            # 10 s (on a loaded machine); files are about 30 % larger, with the same
            # colour error at a given quality. Alpha stays lossless.
            return {"lossless": False, "quality": quality, "method": 0, "alpha_quality": 100}
        case "jpeg":
            return {"quality": quality, "subsampling": 2, "progressive": False, "optimize": False}
        case "avif":
            # libavif's speed 9 took 4.1 s on a 12 MP cut-out where its default (6) took
            # 27 s; files are 3-20 % larger and the colour error is the same.
            return {"quality": quality, "speed": 9}
        case _:
            return {"compression": "tiff_adobe_deflate"}


def _validate(pixels: U8, quality: int, background: RGB) -> None:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise InvalidInput("pixels must be a uint8 array")
    shape_ok = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))
    if not shape_ok or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise InvalidInput(f"pixels must be HxW, HxWx3 or HxWx4, got shape {pixels.shape}")
    if not 1 <= quality <= 100:
        raise InvalidOptions(f"quality must be in 1..100, got {quality}")
    if len(background) != 3 or not all(0 <= c <= 255 for c in background):
        raise InvalidOptions(f"background must be three values in 0..255, got {background}")


def flatten(rgba: U8, background: RGB) -> U8:
    """Composite straight-alpha RGBA over an opaque colour, returning HxWx3.

    Computes ``round((c*a + bg*(255-a)) / 255)`` exactly in uint16: every term fits,
    and ``(t + (t >> 8)) >> 8`` with ``t = x + 128`` is that rounding without a
    division. It is exact where float32 is not, and a few times faster.
    """
    bg = np.asarray(background, dtype=np.uint16)
    out = np.empty((*rgba.shape[:2], 3), dtype=np.uint8)
    for top in range(0, rgba.shape[0], _FLATTEN_BAND):
        band = rgba[top : top + _FLATTEN_BAND]
        alpha = band[..., 3:4].astype(np.uint16)
        acc = band[..., :3].astype(np.uint16)
        acc *= alpha
        acc += bg * (255 - alpha)
        acc += 128
        acc += acc >> 8
        acc >>= 8
        out[top : top + _FLATTEN_BAND] = acc
    return out
