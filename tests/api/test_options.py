"""The public options schema and its translation into core Options."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from cleancut.api.options import parse_options, to_core
from cleancut.core import types as core
from cleancut.errors import InvalidOptions


def convert(raw: dict[str, object] | str | None, **kw: object) -> core.Options:
    return to_core(parse_options(raw), default_model="isnet-general", max_pixels=1000, **kw)


def test_empty_options_are_the_core_defaults() -> None:
    opts = convert(None)
    assert opts == core.Options(model="isnet-general", max_pixels=1000)
    assert convert("") == opts
    assert convert("{}") == opts


def test_output_fields_map_onto_the_output_spec() -> None:
    opts = convert(
        {
            "format": "jpeg",
            "quality": 70,
            "jpeg_background": "navy",
            "clip_path": True,
            "model": "isnet-general-q8",
        }
    )
    assert opts.model == "isnet-general-q8"
    assert opts.output.format == "jpeg"
    assert opts.output.quality == 70
    assert opts.output.flatten_color == (0, 0, 128)
    assert opts.output.clip_path is True


def test_mask_mode() -> None:
    spec = convert({"mode": "mask", "mask": "binary", "threshold": 0.3}).output
    assert (spec.mode, spec.mask, spec.threshold) == ("mask", "binary", 0.3)


@pytest.mark.parametrize(
    ("colour", "rgba"),
    [
        ("#f5f5f5", (245, 245, 245, 255)),
        ("red", (255, 0, 0, 255)),
        ("rgb(0 0 255 / 50%)", (0, 0, 255, 128)),
        ({"r": 10, "g": 20, "b": 30, "a": 0.5}, (10, 20, 30, 128)),
        ({"r": 10, "g": 20, "b": 30}, (10, 20, 30, 255)),
    ],
)
def test_background_colours_in_every_spelling(colour: object, rgba: tuple[int, ...]) -> None:
    bg = convert({"background": {"type": "color", "color": colour}}).background
    assert bg.kind == "color"
    assert bg.color == rgba


def test_gradient_blur_and_image_backgrounds() -> None:
    bg = convert(
        {"background": {"type": "gradient", "color": "white", "color2": "#000", "angle": 90}}
    ).background
    assert (bg.kind, bg.color, bg.color2, bg.angle) == (
        "gradient",
        (255, 255, 255, 255),
        (0, 0, 0, 255),
        90,
    )
    assert convert({"background": {"type": "blur", "blur": 70}}).background.blur == 70
    png = b"\x89PNG\r\n\x1a\nfake"
    encoded = base64.b64encode(png).decode()
    image = convert({"background": {"type": "image", "image": encoded, "fit": "fit"}}).background
    assert (image.kind, image.image, image.fit) == ("image", png, "fit")
    uploaded = convert({"background": {"type": "image"}}, background_image=png).background
    assert uploaded.image == png


def test_image_background_needs_an_image() -> None:
    with pytest.raises(InvalidOptions, match="background"):
        convert({"background": {"type": "image"}})
    with pytest.raises(InvalidOptions, match="base64"):
        convert({"background": {"type": "image", "image": "***"}})
    with pytest.raises(InvalidOptions, match="color"):
        convert({"background": {"type": "color"}})


def test_shadow_layout_and_margin() -> None:
    opts = convert(
        {
            "shadow": {"opacity": 40, "softness": 6, "offset": [1, -2]},
            "trim": True,
            "margin": "5%",
            "scale": 0.8,
            "position": "center",
        }
    )
    assert opts.shadow == core.Shadow(enabled=True, opacity=40, softness=6, offset=(1, -2))
    assert opts.layout == core.Layout(
        trim=True, margin=core.Length(5, "%"), scale=0.8, position=(0.5, 0.5)
    )
    assert convert({"margin": 12}).layout.margin == core.Length(12, "px")
    assert convert({"margin": "12px"}).layout.margin == core.Length(12, "px")
    assert convert({"position": [0.2, 1]}).layout.position == (0.2, 1)
    assert convert({"position": "original"}).layout.position is None


def test_refine_maps_onto_core() -> None:
    refine_cls = core.Refine
    opts = convert({"refine": {"level": 3, "decontaminate": 0.5}})
    assert opts.refine == refine_cls(level=3, decontaminate=0.5)
    assert convert({"refine": {"decontaminate": 0.25}}).refine == refine_cls(decontaminate=0.25)
    assert convert({"refine": {"level": 0}}).refine == refine_cls(level=0)
    assert convert({}).refine == refine_cls()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"format": "gif"}, ("format",)),
        ({"quality": 0}, ("quality",)),
        ({"nope": 1}, ("nope",)),
        ({"background": {"type": "color", "color": {"r": 300, "g": 0, "b": 0}}}, None),
        ({"margin": "5em"}, ("margin",)),
        ({"position": [2, 0]}, ("position",)),
        ({"scale": 0}, ("scale",)),
        ({"refine": {"level": 4}}, ("refine", "level")),
        ({"shadow": {"offset": [500, 0]}}, ("shadow", "offset")),
        ({"threshold": float("nan")}, ("threshold",)),
    ],
)
def test_invalid_options_name_the_field(raw: dict[str, object], field: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        parse_options(json.dumps(raw, allow_nan=True))
    if field is not None:
        assert info.value.errors()[0]["loc"][: len(field)] == field


def test_a_bad_colour_string_is_an_invalid_options_error() -> None:
    with pytest.raises(InvalidOptions, match="colour"):
        convert({"background": {"type": "color", "color": "not-a-colour"}})
