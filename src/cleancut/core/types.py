"""Plain data shared by the core stages, plus the Protocols at its plug points."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from cleancut.errors import InvalidOptions

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

#: Anything ``remove()`` accepts as an image.
Source = bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] | PILImage.Image | U8

Stage = Literal["decode", "inference", "refine", "encode"]
#: progress(stage, fraction of that stage done in [0, 1]).
ProgressFn = Callable[[Stage, float], None]

OutputFormat = Literal["png", "webp", "avif", "jpeg", "tiff", "psd", "svg"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("png", "webp", "avif", "jpeg", "tiff", "psd", "svg")
MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "psd": "image/vnd.adobe.photoshop",
    "svg": "image/svg+xml",
}

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class DecodedImage:
    """An image normalised to 8-bit sRGB with EXIF orientation applied."""

    rgb: U8  # H×W×3, C-contiguous
    alpha: U8 | None  # H×W alpha the source already had, if any
    source_format: str  # lower-case Pillow format name: "jpeg", "png", "heif", ...
    #: sRGB ICC profile to embed in outputs, set when the source carried a profile
    #: (which was converted to sRGB during decode).
    icc_profile: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True)
class OutputSpec:
    """How a result is encoded."""

    format: OutputFormat = "png"
    mode: Literal["cutout", "mask"] = "cutout"
    #: mask output only: ``soft`` keeps the matte, ``binary`` thresholds it.
    mask: Literal["soft", "binary"] = "soft"
    threshold: float = 0.5
    #: lossy quality for JPEG and lossy WebP (1–100).
    quality: int = 90
    #: WebP only: lossless (the default) or lossy with alpha.
    lossless: bool = True
    #: JPEG has no alpha, so transparent results are flattened onto this colour.
    flatten_color: RGB = (255, 255, 255)
    #: embed the subject's outline as a Photoshop clipping path (JPEG, TIFF, PSD)
    clip_path: bool = False


@dataclass(frozen=True)
class Length:
    """A distance in pixels or as a percentage of a reference size (the subject or canvas)."""

    value: float = 0.0
    unit: Literal["px", "%"] = "px"

    def pixels(self, reference: float) -> float:
        return self.value * reference / 100.0 if self.unit == "%" else self.value


@dataclass(frozen=True)
class Background:
    kind: Literal["transparent", "color", "gradient", "blur", "image"] = "transparent"
    color: RGBA = (255, 255, 255, 255)  # solid colour, and the gradient's first stop
    color2: RGBA = (0, 0, 0, 255)  # the gradient's second stop
    #: gradient direction in degrees as in CSS linear-gradient: 0 runs from color at the
    #: bottom to color2 at the top, 90 from left to right
    angle: float = 180.0
    blur: float = 50.0  # blur intensity 0–100
    image: bytes | None = None  # encoded background image
    fit: Literal["fill", "fit"] = "fill"  # image: cover the canvas, or fit inside it centred


@dataclass(frozen=True)
class Shadow:
    enabled: bool = False
    opacity: float = 50.0  # 0–100
    #: blur radius as % of the subject's height
    softness: float = 4.0
    #: offset as % of the subject's (width, height); positive is right / down
    offset: tuple[float, float] = (2.0, 3.0)


@dataclass(frozen=True)
class Layout:
    """Crop, margin, scale and position of the subject on the output canvas."""

    trim: bool = False  # crop the canvas to the subject's bounding box (plus margin)
    margin: Length = field(default_factory=Length)  # around the subject when trimming
    #: subject size relative to the canvas, as a fraction 0 < scale <= 1; None keeps it
    scale: float | None = None
    #: subject position on the canvas as fractions (x, y) of the free space (0.5 = centred);
    #: None keeps the original position
    position: tuple[float, float] | None = None


#: Refinement levels (see ``cleancut.core.refine``) and the one used when none is asked for.
REFINE_LEVELS = (0, 1, 2, 3)
DEFAULT_REFINE_LEVEL = 2


@dataclass(frozen=True)
class Refine:
    """Edge refinement of the model's matte and colour decontamination of soft edges.

    ``level`` 0 keeps the upsampled model matte; 1–3 refine it inside the uncertain band
    around the edge, each more thoroughly (and at more cost) than the last.
    ``decontaminate`` (0..1) moves the colour of semi-transparent pixels toward the
    subject's estimated own colour, removing the old background's tint from the fringe.
    """

    level: int = DEFAULT_REFINE_LEVEL
    decontaminate: float = 0.0

    def __post_init__(self) -> None:
        # Checked here, not at use: options come from HTTP forms and CLI flags, and a bad
        # value should fail when the request is built, before the model runs.
        level = self.level
        if isinstance(level, bool) or not isinstance(level, int) or level not in REFINE_LEVELS:
            raise InvalidOptions(f"refine level must be one of 0, 1, 2, 3, not {level!r}")
        strength = self.decontaminate
        if (
            isinstance(strength, bool)
            or not isinstance(strength, int | float)
            or not math.isfinite(strength)
            or not 0.0 <= strength <= 1.0
        ):
            raise InvalidOptions(f"decontaminate must be a number from 0 to 1, not {strength!r}")


@dataclass(frozen=True)
class Options:
    model: str = "isnet-general"
    output: OutputSpec = field(default_factory=OutputSpec)
    max_pixels: int = 50_000_000
    background: Background = field(default_factory=Background)
    shadow: Shadow = field(default_factory=Shadow)
    layout: Layout = field(default_factory=Layout)
    refine: Refine = field(default_factory=Refine)


class Session(Protocol):
    """One loaded model on one runtime: NCHW float32 in, N×1×H×W float32 out."""

    @property
    def runtime(self) -> str: ...

    def run(self, batch: F32) -> F32: ...


@dataclass(frozen=True)
class Timings:
    decode: float = 0.0
    inference: float = 0.0
    refine: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"decode": self.decode, "inference": self.inference, "refine": self.refine}
