"""The self-hosted tools API's ``settings`` JSON, its translation into our public options, the
file names it serves, and its error envelope.

Phase 1 (the upload) always produces the transparent cut-out PNG the vendor calls the *mask*,
with the chosen model, edge refinement and decontamination. Effects asked for in phase 1
(a background, shadow or another format) are applied like phase 2 once the cut-out exists, to
an effects job of its own (``{stem}_nobg.{ext}``), so the mask and original stay cached for
later effects calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from cleancut.api.errors import ErrorInfo
from cleancut.api.options import BackgroundOptions, RemovalOptions, ShadowOptions
from cleancut.errors import InvalidOptions

BackgroundType = Literal["transparent", "color", "gradient", "blur", "image"]
Format = Literal["png", "webp", "avif"]
#: The job ``meta`` key: ``{"kind": "removal" | "effects", "filename", "effects"?, "root"?}``.
META_KEY = "tools"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Their answers are 400 for anything wrong with the request (validation, file type, model).
_AS_BAD_REQUEST = {422, 415}
_BAD_REQUEST_CODES = {"model_not_found"}


class Effects(BaseModel):
    """The effect fields both phases take. Unknown fields are ignored, as the vendor does."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    backgroundType: BackgroundType | None = None
    backgroundColor: str | None = Field(default=None, max_length=64, description="hex colour")
    gradientColor1: str | None = Field(default=None, max_length=64)
    gradientColor2: str | None = Field(default=None, max_length=64)
    gradientAngle: float | None = Field(default=None, description="degrees")
    blurEnabled: bool | None = None
    blurIntensity: float | None = Field(default=None, ge=0, le=100)
    shadowEnabled: bool | None = None
    shadowOpacity: float | None = Field(default=None, ge=0, le=100)
    outputFormat: Format | None = None

    def plain(self) -> bool:
        """Nothing beyond the transparent PNG cut-out is asked for."""
        kind = self.backgroundType or "transparent"
        return (
            kind == "transparent"
            and not self.blurEnabled
            and not self.shadowEnabled
            and self.outputFormat in (None, "png")
        )

    @property
    def extension(self) -> Format:
        return self.outputFormat or "png"


class RemoveSettings(Effects):
    """``settings`` of ``POST /api/v1/tools/remove-background``."""

    model: str | None = Field(default=None, max_length=100, description="one of our models")
    edgeRefine: int | None = Field(default=None, ge=0, le=3, description="refinement level")
    decontaminate: bool | None = Field(default=None, description="remove colour bleed")


class EffectsSettings(Effects):
    """``settings`` of ``POST /api/v1/tools/remove-background/effects``."""

    jobId: str = Field(min_length=1, max_length=64, description="the job id from phase 1")
    filename: str = Field(min_length=1, max_length=255, description="the file name of phase 1")


def effect_options(effects: Effects, *, model: str | None = None) -> RemovalOptions:
    """Our options for these effects (the background image, if any, travels separately)."""
    kind = effects.backgroundType or "transparent"
    if effects.blurEnabled:
        if kind not in ("transparent", "blur"):
            raise InvalidOptions(
                f"blurEnabled blurs the photo's own background; it cannot go with "
                f"backgroundType {kind!r}"
            )
        kind = "blur"
    background: dict[str, Any] = {"type": kind}
    if kind == "color":
        if not effects.backgroundColor:
            raise InvalidOptions("backgroundType 'color' needs a backgroundColor")
        background["color"] = effects.backgroundColor
    elif kind == "gradient":
        if effects.gradientColor1:
            background["color"] = effects.gradientColor1
        if effects.gradientColor2:
            background["color2"] = effects.gradientColor2
        if effects.gradientAngle is not None:
            background["angle"] = effects.gradientAngle % 360
    elif kind == "blur" and effects.blurIntensity is not None:
        background["blur"] = effects.blurIntensity
    shadow = None
    if effects.shadowEnabled:
        opacity = 50.0 if effects.shadowOpacity is None else effects.shadowOpacity
        shadow = ShadowOptions(opacity=opacity)
    return RemovalOptions(
        format=effects.extension,
        background=BackgroundOptions(**background),
        shadow=shadow,
        model=model,
    )


def removal_options(settings: RemoveSettings) -> RemovalOptions:
    """Phase 1's job: the transparent PNG cut-out with the model and edge settings."""
    refine: dict[str, Any] | None = None
    if settings.edgeRefine is not None or settings.decontaminate is not None:
        refine = {"decontaminate": 1.0 if settings.decontaminate else 0.0}
        if settings.edgeRefine is not None:
            refine["level"] = settings.edgeRefine
    return RemovalOptions.model_validate(
        {"format": "png", "model": settings.model, "refine": refine}
    )


# --------------------------------------------------------------------------- file names


def display_name(raw: str | None, extension: str) -> str:
    """The upload's own file name (its last path part, control characters removed)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:255]
    return name or f"image.{extension}"


def stem(filename: str) -> str:
    """The URL-safe stem the served names start with: ``my photo.jpg`` → ``my_photo``."""
    name = display_name(filename, "bin")
    base = name.rsplit(".", 1)[0] if "." in name[1:] else name
    return _UNSAFE.sub("_", base).strip("._")[:100] or "image"


def mask_name(filename: str) -> str:
    return f"{stem(filename)}_mask.png"


def original_name(filename: str) -> str:
    return f"{stem(filename)}_original.png"


def nobg_name(filename: str, extension: str) -> str:
    return f"{stem(filename)}_nobg.{extension}"


def tools_meta(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = meta.get(META_KEY)
    if isinstance(value, Mapping) and isinstance(value.get("filename"), str):
        return value
    return None


# --------------------------------------------------------------------------- errors


def render_error(info: ErrorInfo) -> Response:
    """``{"error": message, "code": code, "details"?: hint}``, as the vendor's routes answer."""
    status = info.status
    if status in _AS_BAD_REQUEST or info.code in _BAD_REQUEST_CODES:
        status = 400
    body: dict[str, Any] = {"error": info.message, "code": info.code}
    if info.hint:
        body["details"] = info.hint
    return JSONResponse(body, status_code=status, headers=dict(info.headers))


class ToolsError(BaseModel):
    error: str
    code: str
    details: str | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ToolsError, "description": "Error"} for status in statuses}
