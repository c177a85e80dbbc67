"""The outcome of one removal: the decoded original and its full-resolution matte.

Both are kept, so effects and other encodings can be produced later without running the
model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cleancut.core import io, matte
from cleancut.core.types import (
    U8,
    DecodedImage,
    Options,
    OutputFormat,
    OutputSpec,
    ProgressFn,
    Timings,
)
from cleancut.errors import InvalidOptions

_SUFFIX_FORMATS: dict[str, OutputFormat] = {
    ".png": "png",
    ".webp": "webp",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
}


def format_for_path(path: str | Path) -> OutputFormat | None:
    return _SUFFIX_FORMATS.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class Result:
    image: DecodedImage
    alpha: U8  # H×W, full resolution, straight alpha
    model: str
    runtime: str
    options: Options = field(default_factory=Options)
    timings: Timings = field(default_factory=Timings)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def mask(self, *, binary: bool = False, threshold: float = 0.5) -> U8:
        return matte.binary(self.alpha, threshold) if binary else self.alpha

    def rgba(self) -> U8:
        """The cut-out with straight alpha. Fully transparent pixels carry no colour, so the
        discarded background cannot be recovered from the file (and PNGs get smaller)."""
        out = np.empty((*self.alpha.shape, 4), dtype=np.uint8)
        out[..., :3] = self.image.rgb
        out[..., 3] = self.alpha
        out[self.alpha == 0, :3] = 0
        return out

    def pixels(self, output: OutputSpec | None = None) -> U8:
        spec = output or self.options.output
        if spec.mode == "mask":
            return self.mask(binary=spec.mask == "binary", threshold=spec.threshold)
        return self.rgba()

    def encode(
        self,
        output: OutputSpec | None = None,
        progress: ProgressFn | None = None,
        **changes: Any,
    ) -> bytes:
        """Encode with the options given to ``remove`` unless ``output`` or keyword
        overrides (``format="webp"``, ``mode="mask"`` ...) say otherwise."""
        spec = output or self.options.output
        if changes:
            try:
                spec = replace(spec, **changes)
            except TypeError as exc:
                raise InvalidOptions(f"unknown output option: {exc}") from exc
        if progress:
            progress("encode", 0.0)
        data = io.encode(
            self.pixels(spec),
            spec.format,
            quality=spec.quality,
            lossless=spec.lossless,
            background=spec.background,
            icc_profile=self.image.icc_profile if spec.mode == "cutout" else None,
        )
        if progress:
            progress("encode", 1.0)
        return data

    def save(self, path: str | Path, output: OutputSpec | None = None, **changes: Any) -> Path:
        """Write the result; the format follows the file suffix unless given."""
        dest = Path(path)
        if output is None and "format" not in changes and (fmt := format_for_path(dest)):
            changes["format"] = fmt
        data = self.encode(output, **changes)
        dest.write_bytes(data)
        return dest
