"""Camera RAW (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2 ...) through LibRaw, via rawpy.

Developed with the white balance the camera recorded, LibRaw's default demosaic and
automatic brightness (dcraw's look: the brightest 1% of pixels clip), sRGB primaries
and transfer curve, 8 bits. LibRaw rotates by the orientation the RAW records (its
``user_flip`` is left unset).

LibRaw reads the header (and with it the sizes) on open and allocates the sensor data
only when unpacking, so the pixel limit is checked in between.
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np

from cleancut.core.io_decode_base import check_size, from_rgb
from cleancut.core.types import U8, DecodedImage
from cleancut.errors import CorruptImage, ImageTooLarge, UnsupportedFormat

# The sensor area LibRaw unpacks includes masked borders and, for some makers, more;
# beyond this multiple of the limit it is not a border any more.
_SENSOR_SLACK: Final = 2


def decode_raw(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    rawpy = _import_rawpy()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            check_size((sizes.width, sizes.height), max_pixels)
            if sizes.raw_width * sizes.raw_height > _SENSOR_SLACK * max_pixels:
                raise ImageTooLarge(
                    f"the RAW's sensor data is {sizes.raw_width}x{sizes.raw_height}, "
                    f"far over the limit of {max_pixels:,} pixels"
                )
            rgb = raw.postprocess(
                use_camera_wb=True,
                output_color=rawpy.ColorSpace.sRGB,
                output_bps=8,
            )
    except _too_large(rawpy) as e:
        raise ImageTooLarge(f"LibRaw ran out of room for this {fmt}: {_message(e)}") from None
    except rawpy.LibRawFileUnsupportedError:
        # The content already identified the format, so LibRaw refusing it means
        # damage, or a camera newer than this LibRaw.
        raise CorruptImage(
            f"LibRaw cannot read this {fmt} file",
            hint="the file is damaged, or from a camera this LibRaw version does not know",
        ) from None
    except (rawpy.LibRawError, OSError, ValueError) as e:
        raise CorruptImage(f"the {fmt} data is truncated or corrupt: {_message(e)}") from None
    return from_rgb(_three_channels(rgb), None, fmt)


def _three_channels(pixels: U8) -> U8:
    # Monochrome sensors (and files whose colour filter pattern LibRaw cannot place)
    # develop to a single channel.
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return pixels[..., :3]


def _import_rawpy() -> Any:
    try:
        import rawpy
    except ImportError:
        raise UnsupportedFormat("camera RAW support needs the rawpy package") from None
    return rawpy


def _too_large(rawpy: Any) -> tuple[type[BaseException], ...]:
    return (
        rawpy.LibRawTooBigError,
        rawpy.LibRawUnsufficientMemoryError,
        rawpy.LibRawMemPoolOverflowError,
    )


def _message(error: BaseException) -> str:
    # rawpy passes LibRaw's C string through as bytes.
    text = error.args[0] if error.args else error
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
