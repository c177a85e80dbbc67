"""Plain JPEGs decoded by libjpeg-turbo straight into an array (simplejpeg).

Pillow decodes a 12 MP JPEG in about 60 ms but then needs about 50 more to hand the
pixels to numpy (it stores RGB as four bytes a pixel and repacks them); simplejpeg
writes the packed array directly, in about 30 ms, with the same library and the same
default DCT and upsampling, so the pixels are identical. It takes only the common case,
a three-component JPEG without an ICC profile; it is strict about damaged data, and on
any complaint the Pillow path decodes the file instead and decides what is an error, so
what is accepted or rejected does not change.
"""

from __future__ import annotations

from PIL import Image

from cleancut.core.io_decode_base import exif_orientation, from_rgb
from cleancut.core.types import U8, DecodedImage


def decode_plain_jpeg(data: bytes, header: Image.Image) -> DecodedImage | None:
    """``data`` decoded as 8-bit sRGB with its EXIF orientation applied, or None when the
    file is not a plain RGB JPEG or the decoder finds anything wrong with it. ``header``
    is the file opened (not loaded) by Pillow, for its mode, profile and EXIF."""
    if header.mode != "RGB" or header.info.get("icc_profile"):
        return None
    try:
        import simplejpeg
    except ImportError:
        return None
    try:
        rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError:
        return None
    width, height = header.size
    if rgb.shape != (height, width, 3):
        return None
    return from_rgb(orient(rgb, exif_orientation(header)), None, "jpeg")


def orient(pixels: U8, orientation: int) -> U8:
    """The stored pixels turned upright for an EXIF orientation (1–8), as Pillow's
    ``ImageOps.exif_transpose`` turns them; other values leave them as stored."""
    match orientation:
        case 2:
            return pixels[:, ::-1]
        case 3:
            return pixels[::-1, ::-1]
        case 4:
            return pixels[::-1]
        case 5:
            return pixels.swapaxes(0, 1)
        case 6:
            return pixels.swapaxes(0, 1)[:, ::-1]
        case 7:
            return pixels.swapaxes(0, 1)[::-1, ::-1]
        case 8:
            return pixels.swapaxes(0, 1)[::-1]
    return pixels
