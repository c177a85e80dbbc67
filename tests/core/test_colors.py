from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from PIL import ImageColor

from cleancut.core.colors import NAMED_COLORS, parse_color
from cleancut.errors import InvalidInput, InvalidOptions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#f50", (255, 85, 0, 255)),
        ("f50", (255, 85, 0, 255)),
        ("#f508", (255, 85, 0, 136)),
        ("#FF5500", (255, 85, 0, 255)),
        ("ff5500", (255, 85, 0, 255)),
        ("#ff550080", (255, 85, 0, 128)),
        ("FF550000", (255, 85, 0, 0)),
        ("  #AbCdEf \n", (171, 205, 239, 255)),
    ],
)
def test_hex_forms(value: str, expected: tuple[int, int, int, int]) -> None:
    assert parse_color(value) == expected


def test_all_148_css_names_match_the_spec_table() -> None:
    # Pillow ships the CSS Color 4 table too: an independent check of ours.
    assert len(NAMED_COLORS) == 148
    for name, hx in ImageColor.colormap.items():
        assert isinstance(hx, str)
        rgb = tuple(int(hx[i : i + 2], 16) for i in (1, 3, 5))
        assert parse_color(name) == (*rgb, 255), name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rebeccapurple", (102, 51, 153, 255)),
        ("RebeccaPurple", (102, 51, 153, 255)),
        (" White ", (255, 255, 255, 255)),
        ("grey", (128, 128, 128, 255)),
        ("gray", (128, 128, 128, 255)),
        ("transparent", (0, 0, 0, 0)),
        ("TRANSPARENT", (0, 0, 0, 0)),
    ],
)
def test_names(value: str, expected: tuple[int, int, int, int]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rgb(255, 0, 0)", (255, 0, 0, 255)),
        ("RGB( 1 , 2 , 3 )", (1, 2, 3, 255)),
        ("rgba(10,20,30,0.5)", (10, 20, 30, 128)),
        ("rgba(10, 20, 30, 50%)", (10, 20, 30, 128)),
        ("rgb(10 20 30)", (10, 20, 30, 255)),
        ("rgb(255 0 0 / 50%)", (255, 0, 0, 128)),
        ("rgba(0 0 0 / 0)", (0, 0, 0, 0)),
        ("rgb(100%, 0%, 50%)", (255, 0, 128, 255)),
        ("rgb(12.6, 0.4, 1e2)", (13, 0, 100, 255)),
        # CSS clamps out-of-range values rather than rejecting them.
        ("rgb(300, -20, 0)", (255, 0, 0, 255)),
        ("rgba(0, 0, 0, 2)", (0, 0, 0, 255)),
    ],
)
def test_css_functions(value: str, expected: tuple[int, int, int, int]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Adobe v2: alpha is a 0..1 fraction; 1 means opaque.
        ({"red": 255, "green": 255, "blue": 255, "alpha": 1}, (255, 255, 255, 255)),
        ({"red": 10, "green": 20, "blue": 30, "alpha": 0.5}, (10, 20, 30, 128)),
        ({"red": 10, "green": 20, "blue": 30, "alpha": 0}, (10, 20, 30, 0)),
        ({"red": 10, "green": 20, "blue": 30, "alpha": 1.0}, (10, 20, 30, 255)),
        # Above 1 it can only be the 0..255 scale.
        ({"red": 10, "green": 20, "blue": 30, "alpha": 128}, (10, 20, 30, 128)),
        ({"red": 10, "green": 20, "blue": 30, "alpha": 255}, (10, 20, 30, 255)),
        ({"red": 10, "green": 20, "blue": 30}, (10, 20, 30, 255)),
        ({"red": 10.0, "green": 20.4, "blue": 30.6}, (10, 20, 31, 255)),
        ({"r": 1, "g": 2, "b": 3, "a": 0.25}, (1, 2, 3, 64)),
        ({"r": 1, "g": 2, "b": 3}, (1, 2, 3, 255)),
    ],
)
def test_mappings(value: dict[str, Any], expected: tuple[int, int, int, int]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, 2, 3], (1, 2, 3, 255)),
        ((1, 2, 3, 200), (1, 2, 3, 200)),
        ((1, 2, 3, 0.5), (1, 2, 3, 128)),
        ((1, 2, 3, 1), (1, 2, 3, 255)),
        ([np.uint8(7), np.int64(8), np.float32(9.0)], (7, 8, 9, 255)),
    ],
)
def test_sequences(value: Any, expected: tuple[int, int, int, int]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "#",
        "#12345",
        "#1234567",
        "#ggg",
        "nope",
        "red-ish",
        "rgb(1,2)",
        "rgb(1,2,3,4,5)",
        "rgb(a,b,c)",
        "rgb(1 2 3 /)",
        "rgb(1, 2 3)",
        "hsl(0, 100%, 50%)",
        {"red": 256, "green": 0, "blue": 0},
        {"red": -1, "green": 0, "blue": 0},
        {"red": 1, "green": 2},
        {"red": 1, "green": 2, "blue": 3, "alpha": -1},
        {"red": 1, "green": 2, "blue": 3, "alpha": 300},
        {"red": 1, "green": 2, "blue": 3, "alpha": "1"},
        {"red": 1, "green": 2, "blue": 3, "x": 1},
        {},
        [1, 2],
        [1, 2, 3, 4, 5],
        ["1", 2, 3],
        [True, 0, 0],
        [math.nan, 0, 0],
        [math.inf, 0, 0],
        5,
        None,
        b"#fff",
    ],
)
def test_bad_colours_raise_invalid_options_naming_the_value(value: Any) -> None:
    with pytest.raises(InvalidOptions) as info:
        parse_color(value)
    assert repr(value) in info.value.message
    assert info.value.hint  # lists the accepted forms
    assert isinstance(info.value, InvalidInput)
    assert info.value.code == "invalid_options"
    assert info.value.http_status == 400
