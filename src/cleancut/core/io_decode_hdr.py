"""OpenEXR and Radiance HDR: scene-linear floats, tone-mapped to 8-bit sRGB.

The tone-mapping operator is Reinhard et al.'s global operator ("Photographic Tone
Reproduction for Digital Images", SIGGRAPH 2002), applied to luminance so hue is kept:

1. Y = 0.2126 R + 0.7152 G + 0.0722 B (Rec. 709 / sRGB primaries, linear light).
2. Exposure normalisation: the log-average luminance Ȳ = exp(mean(log(δ + Y))) is
   mapped to middle grey, L = 0.18 · Y / Ȳ (δ is 1e-6 of the brightest Y, so the result
   does not depend on the file's absolute scale or any EXPOSURE it declares).
3. Compression: Ld = L (1 + L / Lw²) / (1 + L), with the white point Lw the brightest L
   but at least 1, so a low-dynamic-range scene is barely compressed and the brightest
   pixel lands exactly on white.
4. Colour: RGB · Ld / Y, clipped to [0, 1], then encoded with the sRGB transfer curve.

Pixels with zero alpha do not take part in the average. EXR stores colour premultiplied
by alpha; it is divided out, and alpha kept. EXR files with other primaries
(``chromaticities``, e.g. ACES) and XYZE Radiance files are converted to sRGB primaries
first.

EXR is read with the OpenEXR package (OpenCV's EXR reader is off unless an environment
variable is set before its first use, which a library cannot count on). Radiance is read
with OpenCV, after the header has been checked here.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from cleancut.core.io_decode_base import check_size, from_rgb
from cleancut.core.types import F32, U8, DecodedImage
from cleancut.errors import CorruptImage, ImageTooLarge, UnsupportedFormat

_KEY: Final = 0.18
_LUMA: Final = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# Far above any real radiance, far below float32 overflow once summed and squared.
_MAX_RADIANCE: Final = 1e15
# A file's channels are all read into memory, so their total is capped too:
# RGBA plus a few extra layers per pixel of the limit.
_MAX_SAMPLES_PER_PIXEL: Final = 8
_SRGB_CHROMATICITIES: Final = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
_XYZ_TO_SRGB: Final = np.array(
    [
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ],
    dtype=np.float64,
)
_BRADFORD: Final = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]],
    dtype=np.float64,
)
_RADIANCE_MAX_HEADER: Final = 64 * 1024
_RADIANCE_FORMATS: Final = (b"32-bit_rle_rgbe", b"32-bit_rle_xyze")
_RESOLUTION: Final = re.compile(rb"([-+])([XY]) (\d{1,9}) ([-+])([XY]) (\d{1,9})")
_OPENEXR_ERRORS: Final = (RuntimeError, ValueError, TypeError, KeyError, IndexError, OSError)


# ---------------------------------------------------------------- tone mapping


def tone_map(rgb: F32, visible: NDArray[np.bool_] | None = None) -> U8:
    """Scene-linear H×W×3 RGB (any scale) to 8-bit sRGB; see the module docstring."""
    # fmax drops NaN for 0 (and negatives), fmin caps infinity: one pass, no nan_to_num.
    rgb = np.fmax(rgb, np.float32(0.0), dtype=np.float32)
    np.fmin(rgb, np.float32(_MAX_RADIANCE), out=rgb)
    lum = rgb @ _LUMA
    if visible is not None and not visible.any():
        visible = None
    peak = float(lum.max() if visible is None else lum[visible].max())
    if peak <= 0.0:
        return np.zeros(rgb.shape, dtype=np.uint8)
    # Relative to the brightest pixel, every factor below stays within float32's range,
    # whatever the file's scale (radiance from 1e-30 to 1e15 alike).
    rgb /= np.float32(peak)
    lum /= np.float32(peak)
    sample = lum if visible is None else lum[visible]
    log_average = float(np.exp(np.mean(np.log(sample + np.float32(1e-6)), dtype=np.float64)))
    key_scale = _KEY / log_average  # at most 0.18e6
    scale = np.float32(key_scale)
    white2 = np.float32(max(key_scale, 1.0) ** 2)  # the brightest L is key_scale · 1
    # ratio = Ld / Y with L = scale·Y, Ld = L (1 + L / Lw²) / (1 + L); Y = 0 gives a finite ratio.
    scaled = lum * scale
    ratio = scale * (1.0 + scaled / white2) / (1.0 + scaled)
    rgb *= ratio[..., np.newaxis]
    return linear_to_srgb8(rgb)


@functools.cache
def _srgb_lut() -> U8:
    """8-bit sRGB for each 16-bit step of linear light; fine enough even near black."""
    x = np.arange(65536, dtype=np.float64) / 65535.0
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.rint(encoded * 255.0).astype(np.uint8)


def linear_to_srgb8(linear: NDArray[np.floating[Any]]) -> U8:
    """Linear light in [0, 1] (clipped; NaN as 0) to 8-bit sRGB-encoded values."""
    unit = np.fmax(linear, 0.0, dtype=np.float32)
    np.fmin(unit, np.float32(1.0), out=unit)
    unit *= np.float32(65535.0)
    unit += np.float32(0.5)  # then truncation rounds to nearest
    encoded: U8 = _srgb_lut()[unit.astype(np.uint16)]
    return encoded


# ---------------------------------------------------------------- OpenEXR


def decode_exr(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    openexr = _import_openexr()
    headers = _exr_headers(openexr, data)
    header = headers[0]
    if header.get("type") in (openexr.deepscanline, openexr.deeptile):
        raise UnsupportedFormat("deep EXR images (several samples per pixel) are not supported")
    width, height = _exr_size(header)
    check_size((width, height), max_pixels)
    samples = sum(_exr_samples(h) for h in headers)
    if samples > _MAX_SAMPLES_PER_PIXEL * max_pixels:
        raise ImageTooLarge(
            f"the EXR holds {samples:,} channel samples, over {_MAX_SAMPLES_PER_PIXEL} "
            f"per pixel of the limit of {max_pixels:,}"
        )
    colour_names, alpha_name = _pick_exr_channels(_exr_channel_names(header))
    try:
        exr = openexr.File(io.BytesIO(data), separate_channels=True)
        channels = exr.parts[0].channels
        planes = [channels[name].pixels for name in colour_names]
        alpha_plane = None if alpha_name is None else channels[alpha_name].pixels
    except _OPENEXR_ERRORS as e:
        raise CorruptImage(f"EXR pixel data is truncated or corrupt: {e}") from None
    colour = _exr_colour(planes, (height, width))
    colour = _to_srgb_primaries(colour, header.get("chromaticities"))
    if alpha_plane is None:
        return from_rgb(tone_map(colour), None, fmt)
    alpha = np.clip(np.nan_to_num(_exr_plane(alpha_plane, (height, width))), 0.0, 1.0)
    # EXR colour is premultiplied; where alpha is 0 the colour is emitted light, kept as is.
    covered = alpha > 0.0
    colour[covered] /= alpha[covered][:, np.newaxis]
    alpha8 = np.rint(alpha * 255.0).astype(np.uint8)
    return from_rgb(tone_map(colour, covered), alpha8, fmt)


def _import_openexr() -> Any:
    try:
        import OpenEXR
    except ImportError:
        raise UnsupportedFormat("EXR support needs the OpenEXR package") from None
    return OpenEXR


def _exr_headers(openexr: Any, data: bytes) -> list[Mapping[str, Any]]:
    try:
        parts = openexr.File(io.BytesIO(data), header_only=True).parts
        headers = [part.header for part in parts]
    except _OPENEXR_ERRORS as e:
        raise CorruptImage(f"cannot read the EXR header: {e}") from None
    if not headers or "dataWindow" not in headers[0] or "channels" not in headers[0]:
        raise CorruptImage("the EXR header has no image in it")
    return headers


def _exr_channel_names(header: Mapping[str, Any]) -> list[str]:
    try:
        return [str(channel.name) for channel in header["channels"]]
    except (UnicodeDecodeError, AttributeError, TypeError) as e:
        raise CorruptImage(f"the EXR channel list is corrupt: {e}") from None


def _exr_size(header: Mapping[str, Any]) -> tuple[int, int]:
    low, high = header["dataWindow"]
    return int(high[0]) - int(low[0]) + 1, int(high[1]) - int(low[1]) + 1


def _exr_samples(header: Mapping[str, Any]) -> int:
    if "dataWindow" not in header:
        return 0
    width, height = _exr_size(header)
    return max(width, 0) * max(height, 0) * len(header.get("channels", ()))


def _pick_exr_channels(names: Sequence[str]) -> tuple[list[str], str | None]:
    """Colour channels (R, G, B or luminance Y) and alpha, bare or of the first layer."""
    layers = sorted({name.rpartition(".")[0] for name in names})
    for layer in layers:
        prefix = f"{layer}." if layer else ""
        alpha = prefix + "A" if prefix + "A" in names else None
        if all(prefix + c in names for c in "RGB"):
            return [prefix + c for c in "RGB"], alpha
        if prefix + "Y" in names:
            return [prefix + "Y"], alpha
    if len(names) == 1:
        return [names[0]], None
    listed = ", ".join(sorted(names)[:8])
    raise UnsupportedFormat(f"no RGB or luminance channels in this EXR (it has {listed})")


def _exr_plane(plane: np.ndarray, shape: tuple[int, int]) -> F32:
    if plane.dtype.kind != "f":
        raise UnsupportedFormat("EXR channels of integer samples (object IDs) are not images")
    if plane.shape != shape:
        raise UnsupportedFormat("subsampled EXR channels (luminance/chroma) are not supported")
    return plane.astype(np.float32, copy=False)


def _exr_colour(planes: Sequence[np.ndarray], shape: tuple[int, int]) -> F32:
    stacked = np.stack([_exr_plane(p, shape) for p in planes], axis=-1)
    return np.repeat(stacked, 3, axis=-1) if stacked.shape[-1] == 1 else stacked


def _to_srgb_primaries(rgb: F32, chromaticities: Sequence[float] | None) -> F32:
    if chromaticities is None or np.allclose(chromaticities, _SRGB_CHROMATICITIES, atol=1e-3):
        return rgb
    try:
        to_xyz = _rgb_to_xyz(chromaticities)
        matrix = _XYZ_TO_SRGB @ _adapt_to_d65(chromaticities[6:8]) @ to_xyz
    except (np.linalg.LinAlgError, ZeroDivisionError, ValueError):
        # Degenerate primaries say nothing usable: read the pixels as sRGB primaries.
        return rgb
    if not np.isfinite(matrix).all():
        return rgb
    out: F32 = (rgb @ matrix.T.astype(np.float32)).astype(np.float32, copy=False)
    return out


def _xyz(x: float, y: float) -> NDArray[np.float64]:
    return np.array([x / y, 1.0, (1.0 - x - y) / y], dtype=np.float64)


def _rgb_to_xyz(c: Sequence[float]) -> NDArray[np.float64]:
    primaries = np.stack([_xyz(c[0], c[1]), _xyz(c[2], c[3]), _xyz(c[4], c[5])], axis=1)
    weights = np.linalg.solve(primaries, _xyz(c[6], c[7]))
    return primaries * weights


def _adapt_to_d65(white: Sequence[float]) -> NDArray[np.float64]:
    """Bradford chromatic adaptation from the file's white point to sRGB's D65."""
    source = _BRADFORD @ _xyz(white[0], white[1])
    target = _BRADFORD @ _xyz(*_SRGB_CHROMATICITIES[6:8])
    adapted: NDArray[np.float64] = np.linalg.inv(_BRADFORD) @ np.diag(target / source) @ _BRADFORD
    return adapted


# ---------------------------------------------------------------- Radiance


def decode_radiance(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    blank = data.find(b"\n\n", 0, _RADIANCE_MAX_HEADER)
    if blank < 0:
        raise CorruptImage("the Radiance HDR header never ends")
    lines = data[:blank].split(b"\n")
    declared = [line[len(b"FORMAT=") :].strip() for line in lines if line.startswith(b"FORMAT=")]
    pixel_format = declared[-1] if declared else _RADIANCE_FORMATS[0]
    if pixel_format not in _RADIANCE_FORMATS:
        raise UnsupportedFormat(f"Radiance pixel format {pixel_format!r} is not supported")
    start = blank + 2
    end = data.find(b"\n", start, start + 64)
    match = _RESOLUTION.fullmatch(data[start:end]) if end > 0 else None
    if match is None or match[2] == match[5]:
        raise CorruptImage("the Radiance HDR resolution line is missing or malformed")
    slow, fast = int(match[3]), int(match[6])
    # The first axis is the one that changes slowest: Y means rows are scanlines.
    size = (fast, slow) if match[2] == b"Y" else (slow, fast)
    check_size(size, max_pixels)
    # OpenCV only takes the standard header; the orientation is applied below instead.
    canonical = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (slow, fast)
    try:
        bgr = cv2.imdecode(
            np.frombuffer(canonical + data[end + 1 :], np.uint8), cv2.IMREAD_UNCHANGED
        )
    except cv2.error as e:
        raise CorruptImage(f"Radiance HDR pixel data is corrupt: {e}") from None
    if bgr is None or bgr.shape != (slow, fast, 3) or bgr.dtype != np.float32:
        raise CorruptImage("Radiance HDR pixel data is truncated or corrupt")
    rgb: F32 = np.asarray(bgr[..., ::-1], dtype=np.float32)
    if pixel_format == b"32-bit_rle_xyze":
        rgb = (rgb @ _XYZ_TO_SRGB.T).astype(np.float32)
    return from_rgb(tone_map(_orient(rgb, match)), None, fmt)


def _orient(scan: F32, match: re.Match[bytes]) -> F32:
    """Scanline order as stored to image order (top row first, left column first)."""
    slow_sign, slow_axis, _, fast_sign, _, _ = match.groups()
    if slow_axis == b"X":  # stored column by column
        scan = scan.transpose(1, 0, 2)
        x_sign, y_sign = slow_sign, fast_sign
    else:
        x_sign, y_sign = fast_sign, slow_sign
    # Radiance's Y axis points up: "-Y" runs from the top row down, "+Y" from the bottom up.
    if y_sign == b"+":
        scan = scan[::-1]
    if x_sign == b"-":
        scan = scan[:, ::-1]
    return scan
