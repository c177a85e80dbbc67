"""The formats Pillow (with pillow-heif) decodes: JPEG, PNG, WebP, TIFF, BMP, GIF, HEIF, AVIF, TGA.

Pillow is only ever offered the one plugin the content was sniffed as, and reads the
header first, so the pixel limit is checked before the pixels are decoded.
"""

from __future__ import annotations

import functools
import io
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from cleancut.core.io_decode_base import (
    DECODE_ERRORS,
    check_size,
    exif_orientation,
    finish,
    u16_to_u8,
)
from cleancut.core.io_decode_jpeg import decode_plain_jpeg
from cleancut.core.types import DecodedImage
from cleancut.errors import CorruptImage, ImageTooLarge, UnsupportedFormat

PIL_NAMES: Final = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "tiff": "TIFF",
    "bmp": "BMP",
    "gif": "GIF",
    "heif": "HEIF",
    "avif": "AVIF",
    "tga": "TGA",
}
_TGA_DESCRIPTOR: Final = 17


def decode_pillow(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    with _open(data, fmt) as img:
        check_size(img.size, max_pixels)
        if fmt == "jpeg" and (plain := decode_plain_jpeg(data, img)) is not None:
            return plain
        _load(img)
        if fmt == "tga" and img.mode in ("RGBA", "LA") and data[_TGA_DESCRIPTOR] & 0x0F == 0:
            # The descriptor declares no attribute (alpha) bits: the extra bits of each
            # pixel are padding, and reading them as alpha could erase the image.
            return _finish(img.convert(img.mode[:-1]), fmt)
        return _finish(img, fmt)


def decode_image(img: Image.Image, max_pixels: int) -> DecodedImage:
    """A caller's already opened Pillow image; it is read, never modified."""
    check_size(img.size, max_pixels)
    _load(img)
    return _finish(img, (img.format or "raw").lower())


def _open(data: bytes, fmt: str) -> Image.Image:
    if fmt in ("heif", "avif"):
        _ensure_plugin(fmt)
    try:
        # Restricting to the sniffed format keeps Pillow's rarer plugins away from untrusted bytes.
        return Image.open(io.BytesIO(data), formats=[PIL_NAMES[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own process-wide limit tripped while reading the header; the
        # warning only arrives here when warnings are configured as errors.
        raise ImageTooLarge(f"image dimensions exceed Pillow's safety limit: {e}") from None
    except UnidentifiedImageError:
        raise CorruptImage(f"the data starts like {fmt} but its header is broken") from None
    except (*DECODE_ERRORS, UserWarning) as e:
        # Pillow warns about damaged metadata (TIFF tags, EXIF); where warnings are
        # configured as errors the warning arrives here, and the file is corrupt.
        raise CorruptImage(f"cannot read {fmt} header: {e}") from None


def _ensure_plugin(fmt: str) -> None:
    if fmt == "avif" and features.check("avif"):
        return
    registered = _register_heif_plugins()
    if not registered:
        raise UnsupportedFormat(f"{fmt} support needs the pillow-heif package")
    if fmt not in registered:
        raise UnsupportedFormat(f"this build of Pillow and pillow-heif cannot decode {fmt}")


@functools.cache
def _register_heif_plugins() -> frozenset[str]:
    """Register pillow-heif's openers once, returning the formats it now decodes.

    Registration mutates Pillow's plugin table, so it happens only when such a file
    actually arrives, never at import.
    """
    try:
        import pillow_heif
    except ImportError:
        return frozenset()
    pillow_heif.register_heif_opener()
    formats = {"heif"}
    # pillow-heif dropped AVIF in 1.0; older releases still help a Pillow without it.
    register_avif = getattr(pillow_heif, "register_avif_opener", None)
    if register_avif is not None and not features.check("avif"):
        register_avif()
        formats.add("avif")
    return frozenset(formats)


def _load(img: Image.Image) -> None:
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image exceeds Pillow's safety limit: {e}") from None
    except (*DECODE_ERRORS, UserWarning) as e:
        raise CorruptImage(f"image data is truncated or corrupt: {e}") from None


def _finish(img: Image.Image, fmt: str) -> DecodedImage:
    icc = img.info.get("icc_profile") or None
    img = _apply_orientation(img)
    colour, alpha = _split_alpha(img)
    return finish(colour, None if alpha is None else np.asarray(alpha), fmt, icc)


def _apply_orientation(img: Image.Image) -> Image.Image:
    # exif_transpose copies even an upright image; a full-size copy is worth skipping.
    if exif_orientation(img) in (0, 1):
        return img
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        # As in exif_orientation: malformed EXIF leaves the pixels as stored.
        return img


def _split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Reduce any Pillow mode to colour in L/RGB/CMYK plus an optional L alpha."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_l(img), None
    if mode == "CMYK":
        return img, None
    if mode in ("P", "1", "L", "RGB") and img.has_transparency_data:
        img = img.convert("RGBA")
    elif mode in ("PA", "RGBa", "RGBX", "YCbCr", "LAB", "HSV"):
        img = _convert(img, "RGBA" if "A" in mode or "a" in mode else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode in ("P", "1"):
        img = img.convert("RGB")
    if img.mode in ("LA", "RGBA"):
        return img.convert(img.mode[:-1]), img.getchannel("A")
    if img.mode in ("L", "RGB"):
        return img, None
    raise UnsupportedFormat(f"unsupported colour mode {img.mode}")


def _convert(img: Image.Image, mode: str) -> Image.Image:
    try:
        return img.convert(mode)
    except ValueError:
        raise UnsupportedFormat(f"unsupported colour mode {img.mode}") from None


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    arr = np.asarray(img)
    if img.mode == "F":
        # Floating-point images are taken to be normalised to [0, 1].
        scaled = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        scaled = u16_to_u8(arr)
    return Image.fromarray(scaled)
