"""Decode any accepted image source into 8-bit sRGB pixels plus straight alpha.

Everything that can go wrong with untrusted bytes ends as a typed ``CleancutError``:
the format is recognised by content, the pixel limit is enforced from the header
before any pixel buffer is allocated, and decoder failures become ``CorruptImage``.

One table names the decoder of every format ``sniff_format`` can return; each family
lives in its own module (``io_decode_pillow``, ``_psd``, ``_hdr``, ``_raw``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

from cleancut.core.io_decode_base import Decoder, check_size, srgb_icc_profile
from cleancut.core.io_decode_hdr import decode_exr, decode_radiance
from cleancut.core.io_decode_pillow import PIL_NAMES, decode_image, decode_pillow
from cleancut.core.io_decode_psd import decode_psd
from cleancut.core.io_decode_raw import decode_raw
from cleancut.core.io_decode_sniff import RAW_FORMATS, sniff_format
from cleancut.core.types import U8, DecodedImage, Source
from cleancut.errors import InvalidInput, InvalidOptions, UnsupportedFormat

__all__ = ["INPUT_FORMATS", "decode", "sniff_format", "srgb_icc_profile"]

_DECODERS: Final[Mapping[str, Decoder]] = {
    **dict.fromkeys(PIL_NAMES, decode_pillow),
    "psd": decode_psd,
    "psb": decode_psd,
    "exr": decode_exr,
    "hdr": decode_radiance,
    **dict.fromkeys(RAW_FORMATS, decode_raw),
}

#: Formats ``decode`` accepts, by the names ``sniff_format`` returns.
INPUT_FORMATS: Final = frozenset(_DECODERS)


def decode(source: Source, *, max_pixels: int = 50_000_000) -> DecodedImage:
    """Decode ``source`` to 8-bit sRGB with EXIF orientation applied.

    Alpha is returned separately whenever the source has an alpha channel or a
    transparency key, even when every pixel is opaque: callers can then tell
    "opaque by content" from "no alpha at all". High-dynamic-range sources (EXR,
    Radiance HDR) are tone-mapped, camera RAWs developed (see their modules).

    ``max_pixels`` is checked from the header, before pixel memory is allocated.
    Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` (about 179M pixels as an error)
    still applies on top, also reported as ``ImageTooLarge``; an application that
    wants a higher ``max_pixels`` raises it once at start-up.
    """
    if max_pixels <= 0:
        raise InvalidOptions(f"max_pixels must be positive, got {max_pixels}")
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, Image.Image):
        return decode_image(source, max_pixels)

    data = _read_bytes(source)
    fmt = sniff_format(data)
    decoder = _DECODERS.get(fmt or "")
    if fmt is None or decoder is None:
        supported = ", ".join(sorted(INPUT_FORMATS))
        raise UnsupportedFormat(f"unrecognised image format (supported: {supported})")
    return decoder(data, fmt, max_pixels)


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        data = _read_path(Path(source))
    elif hasattr(source, "read"):
        try:
            data = source.read()
        except (OSError, ValueError) as e:
            raise InvalidInput(f"cannot read from the file object: {e}") from None
        if not isinstance(data, bytes | bytearray):
            raise InvalidInput("file objects must be opened in binary mode")
        data = bytes(data)
    else:
        raise InvalidInput(f"cannot read an image from {type(source).__name__}")
    if not data:
        raise InvalidInput("the input is empty")
    return data


def _read_path(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"not a file but a directory: {path}") from None
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from None


def _from_array(arr: U8, max_pixels: int) -> DecodedImage:
    if arr.dtype != np.uint8:
        raise InvalidInput(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        channels = 1
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        channels = int(arr.shape[2])
    else:
        raise InvalidInput(f"image arrays must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    check_size((int(arr.shape[1]), int(arr.shape[0])), max_pixels)
    # Always copy, so later in-place stages never write into the caller's array.
    if channels == 1:
        rgb = np.repeat(arr[..., np.newaxis], 3, axis=2)
    else:
        rgb = np.array(arr[..., :3], dtype=np.uint8, order="C", copy=True)
    alpha = np.array(arr[..., 3], dtype=np.uint8, order="C", copy=True) if channels == 4 else None
    return DecodedImage(rgb=rgb, alpha=alpha, source_format="raw", icc_profile=None)
