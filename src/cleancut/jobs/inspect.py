"""Cheap checks of an upload at submit time: the image type by content, and the pixel count
from the header (Pillow opens files lazily), so bad or oversized input is refused before a
job exists and without decoding any pixels."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from cleancut.core.io import INPUT_FORMATS, sniff_format
from cleancut.core.io_decode_base import check_size
from cleancut.core.io_decode_pillow import PIL_NAMES
from cleancut.errors import CorruptImage, ImageTooLarge, InvalidInput, UnsupportedFormat

# Pillow's names for the formats probed here; TGA is not probed (the worker's decode checks
# the same limit from the header).
_PIL_NAMES = {fmt: name for fmt, name in PIL_NAMES.items() if fmt != "tga"}
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError)


def probe(data: bytes, max_pixels: int) -> str:
    """The input format's name; raises InvalidInput (empty), UnsupportedFormat (not an image
    we decode), CorruptImage (broken header) or ImageTooLarge (over ``max_pixels``)."""
    if not data:
        raise InvalidInput("the upload is empty")
    fmt = sniff_format(data[:512])
    if fmt is None or fmt not in INPUT_FORMATS:
        supported = ", ".join(sorted(INPUT_FORMATS))
        raise UnsupportedFormat(f"the upload is not an image we can read (supported: {supported})")
    name = _PIL_NAMES.get(fmt)
    if name is None or name not in Image.OPEN:
        # Formats with their own decoders (or plugins registered on first use): the worker's
        # decode checks the same limit from the header, before allocating pixels.
        return fmt
    size = _header_size(data, fmt, name)
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptImage(f"the {fmt} header declares no pixels ({width}x{height})")
    check_size(size, max_pixels)
    return fmt


def _header_size(data: bytes, fmt: str, name: str) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[name]) as img:
                return img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image dimensions exceed the safety limit: {exc}") from None
    except UnidentifiedImageError:
        raise CorruptImage(f"the data starts like {fmt} but its header is broken") from None
    except _HEADER_ERRORS as exc:
        raise CorruptImage(f"cannot read the {fmt} header: {exc}") from None
