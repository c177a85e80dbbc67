"""Decode any accepted image source into 8-bit sRGB pixels plus straight alpha.

Everything that can go wrong with untrusted bytes ends as a typed ``CleancutError``:
the format is recognised by content, the pixel limit is enforced from the header
before any pixel buffer is allocated, and decoder failures become ``CorruptImage``.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features

from cleancut.core.types import U8, DecodedImage, Source
from cleancut.errors import (
    CorruptImage,
    ImageTooLarge,
    InvalidInput,
    InvalidOptions,
    UnsupportedFormat,
)

#: Formats ``decode`` accepts, by the names ``sniff_format`` returns.
INPUT_FORMATS: Final = frozenset({"jpeg", "png", "webp", "tiff", "bmp", "gif", "heif", "avif"})

_PIL_NAMES: Final = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "tiff": "TIFF",
    "bmp": "BMP",
    "gif": "GIF",
    "heif": "HEIF",
    "avif": "AVIF",
}
# Long enough for an ISO-BMFF ftyp box with its list of compatible brands.
_SNIFF_BYTES: Final = 512
_BMP_INFO_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_ORIENTATION_TAG: Final = 0x0112
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
# Pillow's decoders signal malformed data with any of these, depending on the plugin.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    RuntimeError,
    struct.error,
)


def sniff_format(head: bytes) -> str | None:
    """Name the image format from the first bytes of a file, or None if unknown.

    Only the content is looked at: file names and declared media types lie.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # "BM" alone matches plenty of text, so also require a known info-header size.
    if head[:2] == b"BM" and len(head) >= 18 and _u32le(head, 14) in _BMP_INFO_SIZES:
        return "bmp"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(head)
    return None


def _u32le(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _sniff_isobmff(head: bytes) -> str | None:
    box_end = min(int.from_bytes(head[0:4], "big"), len(head))
    # The major brand decides; the compatible brands only matter for generic majors like mif1.
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    for brand in brands:
        if brand in _AVIF_BRANDS:
            return "avif"
        if brand in _HEIF_BRANDS - {b"mif1", b"msf1"}:
            return "heif"
    return "heif" if any(b in _HEIF_BRANDS for b in brands) else None


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_profile() -> bytes:
    """The bytes of the sRGB profile that decoded images are converted to."""
    return _srgb_profile().tobytes()


def decode(source: Source, *, max_pixels: int = 50_000_000) -> DecodedImage:
    """Decode ``source`` to 8-bit sRGB with EXIF orientation applied.

    Alpha is returned separately whenever the source has an alpha channel or a
    transparency key, even when every pixel is opaque: callers can then tell
    "opaque by content" from "no alpha at all".

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
        _check_size(source.size, max_pixels)
        _load(source)
        return _finish(source, (source.format or "raw").lower())

    data = _read_bytes(source)
    fmt = sniff_format(data[:_SNIFF_BYTES])
    if fmt is None:
        supported = ", ".join(sorted(INPUT_FORMATS))
        raise UnsupportedFormat(f"unrecognised image format (supported: {supported})")
    with _open(data, fmt) as img:
        _check_size(img.size, max_pixels)
        _load(img)
        return _finish(img, fmt)


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


def _open(data: bytes, fmt: str) -> Image.Image:
    if fmt in ("heif", "avif"):
        _ensure_plugin(fmt)
    try:
        # Restricting to the sniffed format keeps Pillow's rarer plugins away from untrusted bytes.
        return Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own process-wide limit tripped while reading the header; the
        # warning only arrives here when warnings are configured as errors.
        raise ImageTooLarge(f"image dimensions exceed Pillow's safety limit: {e}") from None
    except UnidentifiedImageError:
        raise CorruptImage(f"the data starts like {fmt} but its header is broken") from None
    except _DECODE_ERRORS as e:
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


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidInput(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height:,} pixels, "
            f"over the limit of {max_pixels:,}",
            hint="downscale the image or raise max_pixels",
        )


def _load(img: Image.Image) -> None:
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image exceeds Pillow's safety limit: {e}") from None
    except _DECODE_ERRORS as e:
        raise CorruptImage(f"image data is truncated or corrupt: {e}") from None


def _finish(img: Image.Image, fmt: str) -> DecodedImage:
    icc = img.info.get("icc_profile") or None
    img = _apply_orientation(img)
    colour, alpha = _split_alpha(img)
    if icc is not None:
        colour = _to_srgb(colour, icc)
    if colour.mode != "RGB":
        colour = colour.convert("RGB")
    return DecodedImage(
        rgb=np.ascontiguousarray(np.asarray(colour, dtype=np.uint8)),
        alpha=None if alpha is None else np.ascontiguousarray(np.asarray(alpha, dtype=np.uint8)),
        source_format=fmt,
        icc_profile=None if icc is None else srgb_icc_profile(),
    )


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        # exif_transpose copies even an upright image; a full-size copy is worth skipping.
        if img.getexif().get(_ORIENTATION_TAG, 1) in (0, 1):
            return img
        return ImageOps.exif_transpose(img)
    except Exception:
        # EXIF in the wild is often malformed and Pillow's parser raises a zoo of
        # exception types on it; orientation is best effort, the pixels are still good.
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
        scaled = np.rint(np.clip(arr, 0.0, 1.0) * 255.0)
    else:
        # 16-bit range, scaled so 65535 maps to 255 exactly rather than clipped.
        wide = np.clip(arr, 0, 65535).astype(np.uint32)
        scaled = (wide * 255 + 32767) // 65535
    return Image.fromarray(scaled.astype(np.uint8))


def _to_srgb(colour: Image.Image, icc: bytes) -> Image.Image:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if colour.mode == "RGB" and _is_srgb(profile):
            return colour
        converted = ImageCms.profileToProfile(colour, profile, _srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or mismatched profile is ignored, as browsers do: the pixels are
        # then taken to be sRGB already.
        return colour
    return colour if converted is None else converted


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = ImageCms.getProfileDescription(profile)
    return "srgb" in description.lower()


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
    _check_size((int(arr.shape[1]), int(arr.shape[0])), max_pixels)
    # Always copy, so later in-place stages never write into the caller's array.
    if channels == 1:
        rgb = np.repeat(arr[..., np.newaxis], 3, axis=2)
    else:
        rgb = np.array(arr[..., :3], dtype=np.uint8, order="C", copy=True)
    alpha = np.array(arr[..., 3], dtype=np.uint8, order="C", copy=True) if channels == 4 else None
    return DecodedImage(rgb=rgb, alpha=alpha, source_format="raw", icc_profile=None)
