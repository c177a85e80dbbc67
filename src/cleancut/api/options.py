"""The public options schema of the HTTP API (pydantic, shown in OpenAPI) and its translation
into the core's frozen :class:`~cleancut.core.types.Options`.

This is the shape clients send; it is deliberately flatter than the core dataclasses
(``format``, ``trim`` and ``margin`` sit at the top) and takes colours the way people write them:
``"#f5f5f5"``, ``"navy"``, ``"rgb(0 0 0 / 50%)"`` or ``{"r": 0, "g": 0, "b": 0, "a": 0.5}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from cleancut.core import types as core
from cleancut.core.colors import parse_color
from cleancut.errors import InvalidOptions

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
_MARGIN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*")


class RGBAColor(BaseModel):
    """A colour as channels 0..255; ``a`` is a fraction 0..1 or a value up to 255."""

    model_config = _STRICT
    r: float = Field(ge=0, le=255)
    g: float = Field(ge=0, le=255)
    b: float = Field(ge=0, le=255)
    a: float = Field(default=255, ge=0, le=255)


Color = Annotated[
    str | RGBAColor,
    Field(
        description="hex (#RGB, #RRGGBB, #RRGGBBAA), a CSS name, rgb()/rgba(), or an RGBA object",
        examples=["#f5f5f5", "navy", {"r": 255, "g": 0, "b": 0, "a": 0.5}],
    ),
]


def _rgba(value: str | RGBAColor) -> core.RGBA:
    if isinstance(value, RGBAColor):
        return parse_color(value.model_dump())
    return parse_color(value)


class BackgroundOptions(BaseModel):
    model_config = _STRICT
    type: Literal["transparent", "color", "gradient", "blur", "image"] = "transparent"
    color: Color | None = Field(default=None, description="color, and the gradient's first stop")
    color2: Color | None = Field(default=None, description="the gradient's second stop")
    angle: float = Field(default=180.0, ge=-360, le=360, description="gradient angle (CSS)")
    blur: float = Field(default=50.0, ge=0, le=100, description="blur: intensity 0..100")
    image: str | None = Field(
        default=None,
        max_length=48 * 1024 * 1024,
        description="image: the background picture, base64-encoded (multipart requests may "
        "send it as a `background_image` file part instead)",
    )
    fit: Literal["fill", "fit"] = "fill"


class ShadowOptions(BaseModel):
    """A drop shadow under the subject (present = on)."""

    model_config = _STRICT
    opacity: float = Field(default=50.0, ge=0, le=100)
    softness: float = Field(default=4.0, ge=0, le=100, description="blur, % of subject height")
    offset: tuple[float, float] = Field(
        default=(2.0, 3.0), description="x, y in % of the subject's size (right/down positive)"
    )

    @field_validator("offset")
    @classmethod
    def _offset_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(-100 <= c <= 100 for c in v):
            raise ValueError("offsets must be within -100..100")
        return v


class RefineOptions(BaseModel):
    """Edge refinement: ``level`` 0 (off) .. 3 (finest), the server's default when left out;
    ``decontaminate`` (0..1) removes the old background's tint from soft edges."""

    model_config = _STRICT
    level: int | None = Field(default=None, ge=0, le=3)
    decontaminate: float = Field(default=0.0, ge=0, le=1)


class RemovalOptions(BaseModel):
    """What to produce. Every field is optional; an empty object gives a transparent PNG."""

    model_config = _STRICT
    format: Literal["png", "webp", "avif", "jpeg", "tiff", "psd", "svg"] = "png"
    mode: Literal["cutout", "mask"] = Field(default="cutout", description="cut-out or the matte")
    mask: Literal["soft", "binary"] = Field(default="soft", description="mask mode: soft or 0/255")
    threshold: float = Field(default=0.5, ge=0, le=1, description="binary mask cut-off")
    quality: int = Field(default=90, ge=1, le=100, description="JPEG / lossy WebP quality")
    lossless: bool = Field(default=True, description="WebP: lossless (default) or lossy")
    jpeg_background: Color = Field(default="#ffffff", description="JPEG has no alpha: flatten")
    background: BackgroundOptions | None = None
    shadow: ShadowOptions | None = None
    trim: bool = Field(default=False, description="crop to the subject plus the margin")
    margin: float | str = Field(
        default=0, description="around a trimmed subject: px as a number, or '12px' / '5%'"
    )
    scale: float | None = Field(default=None, gt=0, le=1, description="subject size / canvas")
    position: Literal["center", "original"] | tuple[float, float] = Field(
        default="original", description="'center', 'original' or [x, y] fractions 0..1"
    )
    clip_path: bool = Field(default=False, description="embed a Photoshop clipping path")
    model: str | None = Field(default=None, max_length=100, description="default: the server's")
    refine: RefineOptions | None = None

    @field_validator("margin")
    @classmethod
    def _margin(cls, v: float | str) -> float | str:
        if isinstance(v, str) and not _MARGIN.fullmatch(v):
            raise ValueError("a margin is a number of px, or a string like '12px' or '5%'")
        if isinstance(v, float | int) and not 0 <= v <= 10_000:
            raise ValueError("a margin must be within 0..10000 px")
        return v

    @field_validator("position")
    @classmethod
    def _position(cls, v: Any) -> Any:
        if isinstance(v, tuple) and not all(0 <= c <= 1 for c in v):
            raise ValueError("position fractions must be within 0..1")
        return v


_ADAPTER = TypeAdapter(RemovalOptions)


def parse_options(raw: str | bytes | dict[str, Any] | None) -> RemovalOptions:
    """From the multipart ``options`` field (a JSON string) or an already-parsed object.
    Raises pydantic's ValidationError (rendered as a 422 that names the field)."""
    if raw is None or (isinstance(raw, str | bytes) and not raw.strip()):
        return RemovalOptions()
    if isinstance(raw, str | bytes):
        return _ADAPTER.validate_json(raw)
    return _ADAPTER.validate_python(raw)


def _length(value: float | str) -> core.Length:
    if isinstance(value, str):
        m = _MARGIN.fullmatch(value)
        assert m is not None  # validated
        return core.Length(float(m.group(1)), "%" if m.group(2) == "%" else "px")
    return core.Length(float(value), "px")


def _background(bg: BackgroundOptions | None, image: bytes | None) -> core.Background:
    if bg is None:
        return core.Background()
    fields: dict[str, Any] = {"kind": bg.type, "angle": bg.angle, "blur": bg.blur, "fit": bg.fit}
    if bg.color is not None:
        fields["color"] = _rgba(bg.color)
    if bg.color2 is not None:
        fields["color2"] = _rgba(bg.color2)
    if bg.type == "color" and bg.color is None:
        raise InvalidOptions("background.color is required with type 'color'")
    if bg.type == "image":
        data = image if image is not None else _b64(bg.image)
        if not data:
            raise InvalidOptions(
                "background type 'image' needs background.image (base64) or a "
                "background_image file part"
            )
        fields["image"] = data
    return core.Background(**fields)


def _b64(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode(text.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidOptions("background.image is not valid base64") from None


def _refine(r: RefineOptions | None) -> dict[str, Any]:
    refine_cls = getattr(core, "Refine", None)
    if r is None:
        return {}
    if refine_cls is None:
        if r.level or r.decontaminate:
            raise InvalidOptions("edge refinement is not available in this build")
        return {}
    fields: dict[str, Any] = {"decontaminate": r.decontaminate}
    if r.level is not None:
        fields["level"] = r.level
    return {"refine": refine_cls(**fields)}


def to_core(
    opts: RemovalOptions,
    *,
    default_model: str,
    max_pixels: int,
    background_image: bytes | None = None,
) -> core.Options:
    """The core Options for these public options; InvalidOptions for a bad combination."""
    flatten = _rgba(opts.jpeg_background)
    output = core.OutputSpec(
        format=opts.format,
        mode=opts.mode,
        mask=opts.mask,
        threshold=opts.threshold,
        quality=opts.quality,
        lossless=opts.lossless,
        flatten_color=(flatten[0], flatten[1], flatten[2]),
        clip_path=opts.clip_path,
    )
    shadow = (
        core.Shadow(
            enabled=opts.shadow.opacity > 0,
            opacity=opts.shadow.opacity,
            softness=opts.shadow.softness,
            offset=opts.shadow.offset,
        )
        if opts.shadow is not None
        else core.Shadow()
    )
    position: tuple[float, float] | None
    if opts.position == "center":
        position = (0.5, 0.5)
    elif opts.position == "original":
        position = None
    else:
        position = opts.position
    layout = core.Layout(
        trim=opts.trim, margin=_length(opts.margin), scale=opts.scale, position=position
    )
    return core.Options(
        model=opts.model or default_model,
        output=output,
        max_pixels=max_pixels,
        background=_background(opts.background, background_image),
        shadow=shadow,
        layout=layout,
        **_refine(opts.refine),
    )
