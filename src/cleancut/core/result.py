"""The outcome of one removal: the decoded original and its full-resolution mattes.

Both the model's own matte and the refined one are kept at full resolution, so other
effects, another refinement level or another encoding can be produced later without
running the model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from cleancut.core import compose_layout, matte, refine
from cleancut.core.compose import Composite, compose
from cleancut.core.render import render
from cleancut.core.types import (
    U8,
    Background,
    DecodedImage,
    Layout,
    Options,
    OutputFormat,
    OutputSpec,
    ProgressFn,
    Refine,
    Shadow,
    Timings,
)
from cleancut.errors import InvalidOptions

_SUFFIX_FORMATS: dict[str, OutputFormat] = {
    ".png": "png",
    ".webp": "webp",
    ".avif": "avif",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".psd": "psd",
    ".svg": "svg",
}

#: Options groups that keyword overrides may address by their field names.
_GROUPS: dict[str, type] = {
    "output": OutputSpec,
    "background": Background,
    "shadow": Shadow,
    "layout": Layout,
    "refine": Refine,
}


def format_for_path(path: str | Path) -> OutputFormat | None:
    return _SUFFIX_FORMATS.get(Path(path).suffix.lower())


def merge_options(base: Options, **changes: Any) -> Options:
    """Apply flat keyword overrides: top-level fields (``model``), whole groups
    (``background=Background(...)``) or a group's own fields (``format="webp"``)."""
    top = {f.name for f in fields(Options)}
    updates: dict[str, Any] = {k: v for k, v in changes.items() if k in top}
    rest = {k: v for k, v in changes.items() if k not in top}
    for group, cls in _GROUPS.items():
        names = {f.name for f in fields(cls)}
        mine = {k: rest.pop(k) for k in list(rest) if k in names}
        if mine:
            updates[group] = replace(updates.get(group, getattr(base, group)), **mine)
    if rest:
        raise InvalidOptions(f"unknown option(s): {', '.join(sorted(rest))}")
    return replace(base, **updates)


def _refine(image: DecodedImage, model_matte: U8, options: Options) -> tuple[U8, U8 | None]:
    alpha, foreground = refine.apply(image.rgb, model_matte, options.refine)
    if image.alpha is not None and alpha is not model_matte:
        # Refinement may move an edge outward; what the source had transparent stays so.
        alpha = np.minimum(alpha, image.alpha)
    return alpha, foreground


@dataclass(frozen=True)
class Result:
    """A decoded original with its mattes; every output is rendered from these.

    ``alpha`` is the matte the outputs use: ``matte`` (the model's own, upsampled) after
    ``options.refine``. To re-apply options later without the model, keep the original and
    ``matte`` and call ``from_mask``; ``alpha`` is what to hand out as "the mask".
    """

    image: DecodedImage
    #: H×W matte at full resolution (straight alpha), refined as ``options.refine`` says
    alpha: U8
    model: str
    runtime: str
    options: Options = field(default_factory=Options)
    timings: Timings = field(default_factory=Timings)
    #: the model's matte before refinement; None when ``alpha`` is all there is
    matte: U8 | None = None
    #: decontaminated subject colours (H×W×3) when ``options.refine.decontaminate`` > 0
    foreground: U8 | None = None

    @classmethod
    def refined(
        cls,
        image: DecodedImage,
        matte: U8,
        options: Options,
        *,
        model: str = "",
        runtime: str = "",
        timings: Timings | None = None,
    ) -> Result:
        """A result whose ``alpha`` (and ``foreground``) come from the model matte ``matte``
        under ``options.refine``."""
        alpha, foreground = _refine(image, matte, options)
        return cls(image, alpha, model, runtime, options, timings or Timings(), matte, foreground)

    @classmethod
    def from_mask(
        cls, image: DecodedImage, mask: U8, options: Options, *, model: str = "", runtime: str = ""
    ) -> Result:
        """A result from a stored original and model matte: effects without the model.
        ``mask`` is refined as ``options.refine`` says, exactly as after inference."""
        if mask.shape != image.rgb.shape[:2]:
            raise InvalidOptions(
                f"the mask is {mask.shape[1]}×{mask.shape[0]} but the image is "
                f"{image.size[0]}×{image.size[1]}"
            )
        return cls.refined(image, mask, options, model=model, runtime=runtime)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def model_matte(self) -> U8:
        """The model's own matte (level 0): what ``from_mask`` expects back."""
        return self.alpha if self.matte is None else self.matte

    def with_options(self, options: Options | None = None, **changes: Any) -> Result:
        """The same image and model matte under other options; the model does not run, and
        the matte is refined again only when the refine options change."""
        new = merge_options(options or self.options, **changes)
        if new.model != self.options.model:
            raise InvalidOptions("changing the model needs a new remove() call")
        if new.refine == self.options.refine:
            return replace(self, options=new)
        alpha, foreground = _refine(self.image, self.model_matte, new)
        return replace(
            self, options=new, alpha=alpha, matte=self.model_matte, foreground=foreground
        )

    def mask(self, *, binary: bool = False, threshold: float = 0.5) -> U8:
        return matte.binary(self.alpha, threshold) if binary else self.alpha

    def rgba(self) -> U8:
        """The plain cut-out (no layout or background) with straight alpha. Fully
        transparent pixels carry no colour, so the discarded background cannot be
        recovered from the file (and PNGs get smaller)."""
        alpha = self.alpha
        out = np.empty((*alpha.shape, 4), dtype=np.uint8)
        out[..., :3] = self.image.rgb if self.foreground is None else self.foreground
        out[..., 3] = alpha
        out[alpha == 0, :3] = 0
        return out

    def composite(self) -> Composite:
        return compose(self.image.rgb, self.alpha, self.options, foreground=self.foreground)

    def encode(
        self,
        output: OutputSpec | None = None,
        progress: ProgressFn | None = None,
        **changes: Any,
    ) -> bytes:
        """Encode with this result's options, unless ``output`` or keyword overrides
        (``format="webp"``, ``mode="mask"``, ``kind="color"`` ...) say otherwise."""
        target = self.with_options(replace(self.options, output=output)) if output else self
        if changes:
            target = target.with_options(**changes)
        if progress:
            progress("encode", 0.0)
        data = target._render()
        if progress:
            progress("encode", 1.0)
        return data

    def _render(self) -> bytes:
        spec = self.options.output
        composite = self.composite()
        original = None
        if spec.clip_path:
            placement = compose_layout.plan(
                self.alpha, self.options.layout, self.options.max_pixels
            )
            if not placement.moved:
                original = compose_layout.window(self.image.rgb, placement)
        # The PSD layer keeps the untouched photo: its layer mask does the cutting.
        layer = (self.image.rgb, self.alpha) if spec.format == "psd" else None
        return render(composite, spec, self.image, original=original, layer=layer)

    def save(self, path: str | Path, output: OutputSpec | None = None, **changes: Any) -> Path:
        """Write the result; the format follows the file suffix unless given."""
        dest = Path(path)
        if output is None and "format" not in changes and (fmt := format_for_path(dest)):
            changes["format"] = fmt
        dest.write_bytes(self.encode(output, **changes))
        return dest
