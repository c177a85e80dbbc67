"""What every decoder shares: the pixel limit, colour management and the result type.

Each format family lives in its own ``io_decode_*`` module; they all end here, so an
image from any of them comes out the same way: 8-bit sRGB, straight alpha, contiguous.
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable
from typing import Final

import numpy as np
from PIL import Image, ImageCms

from cleancut.core.types import U8, DecodedImage
from cleancut.errors import ImageTooLarge, InvalidInput

_ORIENTATION_TAG: Final = 0x0112

#: decoder(file bytes, sniffed format name, max_pixels) -> image
Decoder = Callable[[bytes, str, int], DecodedImage]

# Pillow's decoders signal malformed data with any of these, depending on the plugin.
DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    RuntimeError,
    struct.error,
)


def check_size(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse an image by its declared (width, height), before any pixel is allocated."""
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidInput(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height:,} pixels, "
            f"over the limit of {max_pixels:,}",
            hint="downscale the image or raise max_pixels",
        )


@functools.cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_profile() -> bytes:
    """The bytes of the sRGB profile that decoded images are converted to."""
    return srgb_profile().tobytes()


def to_srgb(colour: Image.Image, icc: bytes) -> Image.Image:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if colour.mode == "RGB" and _is_srgb(profile):
            return colour
        converted = ImageCms.profileToProfile(colour, profile, srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or mismatched profile is ignored, as browsers do: the pixels are
        # then taken to be sRGB already.
        return colour
    return colour if converted is None else converted


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = ImageCms.getProfileDescription(profile)
    return "srgb" in description.lower()


def finish(colour: Image.Image, alpha: U8 | None, fmt: str, icc: bytes | None) -> DecodedImage:
    """Colour in L, RGB or CMYK (plus an ICC profile, if any) to the 8-bit sRGB result."""
    if icc is not None:
        colour = to_srgb(colour, icc)
    if colour.mode != "RGB":
        colour = colour.convert("RGB")
    return DecodedImage(
        rgb=np.ascontiguousarray(np.asarray(colour, dtype=np.uint8)),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.uint8),
        source_format=fmt,
        icc_profile=None if icc is None else srgb_icc_profile(),
    )


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation (1–8; 0 or 1: upright) of an opened image, 1 when unreadable:
    EXIF in the wild is often malformed and Pillow's parser raises a zoo of exception types
    on it; orientation is best effort, the pixels are still good."""
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1


def from_rgb(rgb: U8, alpha: U8 | None, fmt: str) -> DecodedImage:
    """An image a decoder already produced as 8-bit sRGB (no profile to convert)."""
    return DecodedImage(
        rgb=np.ascontiguousarray(rgb, dtype=np.uint8),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.uint8),
        source_format=fmt,
        icc_profile=None,
    )


def u16_to_u8(values: np.ndarray) -> U8:
    """Scale 16-bit samples so 65535 maps to 255 exactly, rounding to nearest."""
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    out: U8 = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return out
