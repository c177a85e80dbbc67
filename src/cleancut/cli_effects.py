"""The effect flags of ``cleancut remove`` and their translation into core Options groups."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from cleancut.errors import InvalidOptions

F = TypeVar("F", bound=Callable[..., Any])

_EFFECT_OPTIONS = [
    click.option(
        "--bg",
        "bg",
        metavar="COLOR|gradient(A,B[,ANGLE])",
        help="Background: transparent (default), a colour (#RGB, #RRGGBB, #RRGGBBAA, a CSS "
        "name, rgb()), or a linear gradient such as 'gradient(#fff, navy, 90)'.",
    ),
    click.option(
        "--bg-image",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Put the subject on this image.",
    ),
    click.option(
        "--bg-fit",
        type=click.Choice(["fill", "fit"]),
        default="fill",
        show_default=True,
        help="--bg-image: cover the canvas, or fit inside it.",
    ),
    click.option(
        "--blur",
        type=click.FloatRange(0, 100),
        help="Keep the original background, blurred with this intensity (0-100).",
    ),
    click.option(
        "--shadow",
        type=click.FloatRange(0, 100),
        help="Add a drop shadow with this opacity (0-100).",
    ),
    click.option(
        "--shadow-softness",
        type=click.FloatRange(0, 100),
        default=4.0,
        show_default=True,
        help="Shadow blur as %% of the subject's height.",
    ),
    click.option(
        "--shadow-offset",
        default="2,3",
        show_default=True,
        metavar="X,Y",
        help="Shadow offset as %% of the subject's width and height.",
    ),
    click.option("--trim", is_flag=True, help="Crop to the subject (plus --margin)."),
    click.option("--margin", default="0", metavar="N[px|%]", help="Margin around a --trim crop."),
    click.option(
        "--scale",
        type=click.FloatRange(0, 1, min_open=True),
        help="Subject size as a fraction of the canvas (0-1].",
    ),
    click.option(
        "--position",
        metavar="center|X,Y",
        help="Subject position as fractions of the free space (0.5,0.5 = centre).",
    ),
    click.option(
        "--refine",
        "refine_level",
        type=click.IntRange(0, 3),
        metavar="0-3",
        help="Edge refinement: 0 keeps the model's matte; 1-3 refine it at full resolution "
        "along the edge, each more thoroughly and slowly (default: 2).",
    ),
    click.option(
        "--decontaminate",
        type=click.FloatRange(0, 1),
        metavar="0..1",
        help="Remove the old background's colour from soft edges with this strength "
        "(0 = off, the default; 1 = full).",
    ),
    click.option(
        "--clip-path",
        is_flag=True,
        help="Embed the outline as a Photoshop clipping path (jpeg, tiff, psd).",
    ),
]


def effect_options(func: F) -> F:
    for option in reversed(_EFFECT_OPTIONS):
        func = option(func)
    return func


def _length(text: str) -> tuple[float, str]:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*", text)
    if m is None:
        raise InvalidOptions(f"--margin takes a number of px or a percentage, got {text!r}")
    return float(m.group(1)), m.group(2) or "px"


def _pair(text: str, flag: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidOptions(f"{flag} takes two numbers X,Y, got {text!r}") from None
    return x, y


def _gradient(inner: str) -> dict[str, Any]:
    from cleancut.core.colors import parse_color

    parts = [p.strip() for p in re.split(r",(?![^()]*\))", inner) if p.strip()]
    angle = 180.0
    if parts and re.fullmatch(r"-?\d+(\.\d+)?(deg)?", parts[0]):
        angle = float(parts.pop(0).removesuffix("deg"))
    elif len(parts) == 3 and re.fullmatch(r"-?\d+(\.\d+)?(deg)?", parts[-1]):
        angle = float(parts.pop().removesuffix("deg"))
    if len(parts) != 2:
        raise InvalidOptions("a gradient needs two colours, e.g. 'gradient(#ffffff, navy, 90)'")
    return {
        "kind": "gradient",
        "color": parse_color(parts[0]),
        "color2": parse_color(parts[1]),
        "angle": angle,
    }


def background_fields(
    bg: str | None, bg_image: Path | None, bg_fit: str, blur: float | None
) -> dict[str, Any]:
    """The Background fields the flags ask for; at most one background may be given."""
    from cleancut.core.colors import parse_color

    given = [
        name
        for name, v in (("--bg", bg), ("--bg-image", bg_image), ("--blur", blur))
        if v is not None
    ]
    if len(given) > 1:
        raise InvalidOptions(f"choose one background: {' and '.join(given)} were both given")
    if bg_image is not None:
        return {"kind": "image", "image": bg_image.read_bytes(), "fit": bg_fit}
    if blur is not None:
        return {"kind": "blur", "blur": blur}
    if bg is None or bg.strip().lower() == "transparent":
        return {"kind": "transparent"}
    m = re.fullmatch(r"\s*(?:linear-)?gradient\((.*)\)\s*", bg, flags=re.IGNORECASE)
    if m:
        return _gradient(m.group(1))
    return {"kind": "color", "color": parse_color(bg)}


def build_effects(params: dict[str, Any]) -> dict[str, Any]:
    """Options groups (background, shadow, layout, refine) from the parsed flags."""
    from cleancut.core.types import Background, Layout, Length, Refine, Shadow

    background = Background(
        **background_fields(params["bg"], params["bg_image"], params["bg_fit"], params["blur"])
    )
    shadow = Shadow()
    if params["shadow"] is not None:
        shadow = Shadow(
            enabled=params["shadow"] > 0,
            opacity=params["shadow"],
            softness=params["shadow_softness"],
            offset=_pair(params["shadow_offset"], "--shadow-offset"),
        )
    value, unit = _length(params["margin"])
    position = None
    if params["position"] is not None:
        text = params["position"].strip().lower()
        position = (0.5, 0.5) if text in ("center", "centre") else _pair(text, "--position")
    layout = Layout(
        trim=params["trim"],
        margin=Length(value, unit),  # type: ignore[arg-type]
        scale=params["scale"],
        position=position,
    )
    refine = Refine()
    if params.get("refine_level") is not None:
        refine = replace(refine, level=params["refine_level"])
    if params.get("decontaminate") is not None:
        refine = replace(refine, decontaminate=params["decontaminate"])
    return {"background": background, "shadow": shadow, "layout": layout, "refine": refine}
