"""remove.bg's request parameters (as ``removebg_form`` reads them from any of the three body
kinds), checked one by one with remove.bg's error codes, and turned into our public
:class:`RemovalOptions`.

Every refusal is a :class:`RemoveBgError` whose ``code`` is the one remove.bg uses
(``missing_source``, ``multiple_sources``, ``invalid_bg_color`` ...), so the router's error
renderer can pass it through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal

from cleancut.api.options import RemovalOptions
from cleancut.core.colors import parse_color
from cleancut.core.types import RGBA
from cleancut.errors import CleancutError

#: remove.bg's ``size`` values (and their aliases) -> the output's pixel budget.
SIZES: dict[str, int] = {
    "preview": 250_000,
    "small": 250_000,
    "regular": 250_000,
    "medium": 1_500_000,
    "hd": 4_000_000,
    "full": 25_000_000,
    "4k": 25_000_000,
    "auto": 25_000_000,
    "50mp": 50_000_000,
}
#: A PNG result is capped lower than JPG/WebP/ZIP, as remove.bg does.
PNG_MAX_PIXELS = 10_000_000
TYPES = ("auto", "person", "product", "car", "animal", "graphic", "transportation")
FORMATS = ("auto", "png", "jpg", "webp", "zip")
#: The most remove.bg adds on each side of a cropped subject.
MAX_MARGIN_PX = 500.0
MAX_MARGIN_PERCENT = 50.0

OutputKind = Literal["auto", "png", "jpg", "webp", "zip"]
#: (value, unit) where unit is "px" or "%".
Length = tuple[float, str]

_LENGTH = re.compile(r"(\d+(?:\.\d+)?)(px|%)?")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class RemoveBgError(CleancutError):
    """A request remove.bg would refuse; ``code`` is remove.bg's own error code."""

    http_status = 400

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = status


@dataclass(frozen=True)
class Params:
    image: bytes | None  # image_file or decoded image_file_b64
    image_url: str | None
    size: str
    type: str
    format: OutputKind
    roi: tuple[Length, Length, Length, Length] | None
    crop: bool
    crop_margin: Length
    scale: float | None
    position: tuple[float, float] | None
    channels: Literal["rgba", "alpha"]
    bg_color: RGBA | None
    bg_image: bytes | None
    bg_image_url: str | None
    shadow: bool
    shadow_opacity: float

    def pixel_budget(self) -> int:
        budget = SIZES[self.size]
        return min(budget, PNG_MAX_PIXELS) if self.output_format() == "png" else budget

    def opaque(self) -> bool:
        """The result has no transparency (a solid colour or a picture behind it)."""
        if self.channels == "alpha":
            return False  # the mask itself: kept lossless by ``auto``
        if self.bg_image is not None or self.bg_image_url is not None:
            return True
        return self.bg_color is not None and self.bg_color[3] == 255

    def output_format(self) -> Literal["png", "jpg", "webp", "zip"]:
        """``auto`` is PNG when the result has transparent areas, JPG otherwise."""
        if self.format == "auto":
            return "jpg" if self.opaque() else "png"
        return self.format

    def options(self, background_image: bytes | None) -> RemovalOptions:
        """Our public options for this request (the job renders the image remove.bg would)."""
        fmt = self.output_format()
        raw: dict[str, Any] = {
            "format": {"jpg": "jpeg", "zip": "png"}.get(fmt, fmt),
            "mode": "mask" if self.channels == "alpha" else "cutout",
            "trim": self.crop,
            "margin": f"{self.crop_margin[0]:g}{self.crop_margin[1]}" if self.crop else 0,
        }
        if self.scale is not None:
            raw["scale"] = self.scale
        if self.position is not None:
            raw["position"] = list(self.position)
        if self.shadow and fmt != "zip":
            raw["shadow"] = {"opacity": self.shadow_opacity}
        if fmt != "zip" and self.channels == "rgba":
            if background_image is not None:
                raw["background"] = {"type": "image", "fit": "fill"}
            elif self.bg_color is not None:
                hex_rgba = "".join(f"{c:02x}" for c in self.bg_color)
                raw["background"] = {"type": "color", "color": f"#{hex_rgba}"}
        return RemovalOptions.model_validate(raw)


def parse(form: dict[str, Any]) -> Params:
    image, image_url = _source(form)
    bg_color, bg_image, bg_image_url = _background(form)
    scale = _scale(form.get("scale"))
    position = _position(form.get("position"))
    if scale is not None and position is None:
        position = (0.5, 0.5)  # remove.bg: scaling implies position=center
    shadow_opacity = _number(form.get("shadow_opacity", 50), "shadow_opacity", 0, 100)
    shadow = _flag(form.get("add_shadow"), "add_shadow") or _text(form, "shadow_type") not in (
        "",
        "none",
    )
    return Params(
        image=image,
        image_url=image_url,
        size=_choice(form, "size", tuple(SIZES), "preview", lower=True),
        type=_choice(form, "type", TYPES, "auto"),
        format=_choice(form, "format", FORMATS, "auto"),  # type: ignore[arg-type]
        roi=_roi(form.get("roi")),
        crop=_flag(form.get("crop"), "crop"),
        crop_margin=_margin(form.get("crop_margin")),
        scale=scale,
        position=position,
        channels=_choice(form, "channels", ("rgba", "alpha"), "rgba"),  # type: ignore[arg-type]
        bg_color=bg_color,
        bg_image=bg_image,
        bg_image_url=bg_image_url,
        shadow=shadow,
        shadow_opacity=shadow_opacity,
    )


def _present(form: dict[str, Any], name: str) -> bool:
    value = form.get(name)
    return value is not None and value != "" and value != b""


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if isinstance(value, bytes):
        raise RemoveBgError(f"invalid_{name}", f"{name} must be text")
    return str(value).strip()


def _source(form: dict[str, Any]) -> tuple[bytes | None, str | None]:
    given = [n for n in ("image_file", "image_file_b64", "image_url") if _present(form, n)]
    if not given:
        raise RemoveBgError(
            "missing_source", "no image given: send image_file, image_file_b64 or image_url"
        )
    if len(given) > 1:
        raise RemoveBgError(
            "multiple_sources",
            f"give exactly one image source, not {' and '.join(given)}",
        )
    match given[0]:
        case "image_file":
            return _file_bytes(form["image_file"], "image_file"), None
        case "image_file_b64":
            return _b64(form["image_file_b64"], "image_file_b64"), None
    return None, _url(form["image_url"], "image_url")


def _background(form: dict[str, Any]) -> tuple[RGBA | None, bytes | None, str | None]:
    given = [n for n in ("bg_color", "bg_image_url", "bg_image_file") if _present(form, n)]
    if len(given) > 1:
        raise RemoveBgError(
            "multiple_bg_sources",
            f"give at most one background, not {' and '.join(given)}",
        )
    if not given:
        return None, None, None
    if given[0] == "bg_color":
        text = _text(form, "bg_color")
        try:
            return parse_color(text), None, None
        except CleancutError:
            raise RemoveBgError(
                "invalid_bg_color",
                f"bg_color {text!r} is not a colour: use a hex code (81d4fa, fff, 81d4fa77) "
                "or a colour name",
            ) from None
    if given[0] == "bg_image_file":
        return None, _file_bytes(form["bg_image_file"], "bg_image_file"), None
    return None, None, _url(form["bg_image_url"], "bg_image_url")


def _file_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")  # a text part: it will not sniff as an image
    raise RemoveBgError(f"invalid_{name}", f"{name} must be a file")


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str | bytes):
        raise RemoveBgError(f"invalid_{name}", f"{name} must be a base64 string")
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RemoveBgError(f"invalid_{name}", f"{name} is not valid base64") from None


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise RemoveBgError(f"invalid_{name}", f"{name} must be a URL of at most 2048 characters")
    return value.strip()


def _choice(
    form: dict[str, Any], name: str, allowed: tuple[str, ...], default: str, lower: bool = False
) -> str:
    text = _text(form, name) or default
    key = text.lower() if lower else text
    if key not in allowed:
        raise RemoveBgError(
            f"invalid_{name}", f"{name} must be one of {', '.join(allowed)}, not {text!r}"
        )
    return key


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower() if not isinstance(value, bytes) else "?"
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RemoveBgError(f"invalid_{name}", f"{name} must be true or false")


def _number(value: Any, name: str, low: float, high: float) -> float:
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        raise RemoveBgError(f"invalid_{name}", f"{name} must be a number") from None
    if not low <= number <= high:
        raise RemoveBgError(f"invalid_{name}", f"{name} must be within {low:g}..{high:g}")
    return number


def _length(token: str, name: str) -> Length:
    m = _LENGTH.fullmatch(token.strip().lower())
    if m is None:
        raise RemoveBgError(
            f"invalid_{name}", f"{name}: {token!r} is not a length such as '30px' or '10%'"
        )
    return float(m.group(1)), m.group(2) or "px"


def _margin(value: Any) -> Length:
    """One length for every side (two or four are accepted when they are all equal); capped
    at 500px or 50% per side, as remove.bg caps it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return (0.0, "px")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value}px"
    tokens = str(value).replace(",", " ").split()
    if len(tokens) not in (1, 2, 4):
        raise RemoveBgError("invalid_crop_margin", "crop_margin takes one, two or four lengths")
    lengths = {_length(t, "crop_margin") for t in tokens}
    if len(lengths) > 1:
        raise RemoveBgError(
            "invalid_crop_margin",
            "crop_margin: different margins per side are not supported here; give one length",
        )
    number, unit = lengths.pop()
    return (min(number, MAX_MARGIN_PERCENT if unit == "%" else MAX_MARGIN_PX), unit)


def _scale(value: Any) -> float | None:
    if value is None or str(value).strip().lower() in ("", "original"):
        return None
    text = str(value).strip()
    if not text.endswith("%"):
        raise RemoveBgError("invalid_scale", "scale is 'original' or a percentage '10%'..'100%'")
    return _number(text, "scale", 10, 100) / 100.0


def _position(value: Any) -> tuple[float, float] | None:
    if value is None or str(value).strip().lower() in ("", "original"):
        return None
    text = str(value).strip().lower()
    if text == "center":
        return (0.5, 0.5)
    tokens = text.replace(",", " ").split()
    if len(tokens) not in (1, 2) or not all(t.endswith("%") for t in tokens):
        raise RemoveBgError(
            "invalid_position",
            "position is 'original', 'center', or one or two percentages ('50%', '0% 100%')",
        )
    fractions = [_number(t, "position", 0, 100) / 100.0 for t in tokens]
    return (fractions[0], fractions[-1])


def _roi(value: Any) -> tuple[Length, Length, Length, Length] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    tokens = str(value).replace(",", " ").split()
    if len(tokens) != 4:
        raise RemoveBgError(
            "invalid_roi", "roi is 'x1 y1 x2 y2', each in px or %, e.g. '0% 0% 100% 100%'"
        )
    a, b, c, d = (_length(t, "roi") for t in tokens)
    return (a, b, c, d)
