"""Plain data shared by the core stages, plus the Protocols at its plug points."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

#: Anything ``remove()`` accepts as an image.
Source = bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] | PILImage.Image | U8

Stage = Literal["decode", "inference", "refine", "encode"]
#: progress(stage, fraction of that stage done in [0, 1]).
ProgressFn = Callable[[Stage, float], None]

OutputFormat = Literal["png", "webp", "jpeg"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("png", "webp", "jpeg")
MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
}

RGB = tuple[int, int, int]


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
    #: JPEG has no alpha, so cut-outs are flattened onto this colour.
    background: RGB = (255, 255, 255)


@dataclass(frozen=True)
class Options:
    model: str = "isnet-general"
    output: OutputSpec = field(default_factory=OutputSpec)
    max_pixels: int = 50_000_000


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
