"""Parse the colour forms that vendor APIs send into one ``RGBA`` tuple.

Accepted, case-insensitively and ignoring surrounding whitespace:

* hex: ``#RGB``, ``#RGBA``, ``#RRGGBB``, ``#RRGGBBAA``, with or without the ``#``;
* the 148 CSS Color 4 named colours and ``transparent``;
* CSS ``rgb()`` / ``rgba()`` in the comma form ``rgb(255, 0, 0)`` or the space form
  ``rgb(255 0 0 / 50%)``; channels are numbers or percentages and, as in CSS,
  out-of-range values are clamped; the alpha is a number 0..1 or a percentage;
* a mapping ``{red, green, blue[, alpha]}`` (Adobe v2) or ``{r, g, b[, a]}``;
* a sequence of 3 or 4 numbers ``(r, g, b[, a])``.

Channels of mappings and sequences are 0..255 (integral floats are fine). Their alpha
follows one rule: **a value in 0..1 is a fraction** (Adobe v2 sends ``"alpha": 1`` for
opaque, ``0.5`` for half), **a value above 1 is on the 0..255 scale** (``128``). So
``1`` means opaque, never 1/255; a missing alpha is opaque. Anything else raises
``InvalidOptions`` naming the offending value.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cleancut.core.types import RGBA
from cleancut.errors import InvalidOptions

_HINT: Final = (
    "use #RRGGBB[AA], #RGB[A], a CSS colour name, rgb()/rgba(), "
    "{red, green, blue, alpha} or [r, g, b(, a)]"
)

# CSS Color 4 named colours (https://www.w3.org/TR/css-color-4/#named-colors).
_NAMED_TABLE: Final = """
    aliceblue f0f8ff antiquewhite faebd7 aqua 00ffff aquamarine 7fffd4 azure f0ffff
    beige f5f5dc bisque ffe4c4 black 000000 blanchedalmond ffebcd blue 0000ff blueviolet 8a2be2
    brown a52a2a burlywood deb887 cadetblue 5f9ea0 chartreuse 7fff00 chocolate d2691e
    coral ff7f50 cornflowerblue 6495ed cornsilk fff8dc crimson dc143c cyan 00ffff
    darkblue 00008b darkcyan 008b8b darkgoldenrod b8860b darkgray a9a9a9 darkgreen 006400
    darkgrey a9a9a9 darkkhaki bdb76b darkmagenta 8b008b darkolivegreen 556b2f darkorange ff8c00
    darkorchid 9932cc darkred 8b0000 darksalmon e9967a darkseagreen 8fbc8f darkslateblue 483d8b
    darkslategray 2f4f4f darkslategrey 2f4f4f darkturquoise 00ced1 darkviolet 9400d3
    deeppink ff1493 deepskyblue 00bfff dimgray 696969 dimgrey 696969 dodgerblue 1e90ff
    firebrick b22222 floralwhite fffaf0 forestgreen 228b22 fuchsia ff00ff gainsboro dcdcdc
    ghostwhite f8f8ff gold ffd700 goldenrod daa520 gray 808080 green 008000 greenyellow adff2f
    grey 808080 honeydew f0fff0 hotpink ff69b4 indianred cd5c5c indigo 4b0082 ivory fffff0
    khaki f0e68c lavender e6e6fa lavenderblush fff0f5 lawngreen 7cfc00 lemonchiffon fffacd
    lightblue add8e6 lightcoral f08080 lightcyan e0ffff lightgoldenrodyellow fafad2
    lightgray d3d3d3 lightgreen 90ee90 lightgrey d3d3d3 lightpink ffb6c1 lightsalmon ffa07a
    lightseagreen 20b2aa lightskyblue 87cefa lightslategray 778899 lightslategrey 778899
    lightsteelblue b0c4de lightyellow ffffe0 lime 00ff00 limegreen 32cd32 linen faf0e6
    magenta ff00ff maroon 800000 mediumaquamarine 66cdaa mediumblue 0000cd mediumorchid ba55d3
    mediumpurple 9370db mediumseagreen 3cb371 mediumslateblue 7b68ee mediumspringgreen 00fa9a
    mediumturquoise 48d1cc mediumvioletred c71585 midnightblue 191970 mintcream f5fffa
    mistyrose ffe4e1 moccasin ffe4b5 navajowhite ffdead navy 000080 oldlace fdf5e6 olive 808000
    olivedrab 6b8e23 orange ffa500 orangered ff4500 orchid da70d6 palegoldenrod eee8aa
    palegreen 98fb98 paleturquoise afeeee palevioletred db7093 papayawhip ffefd5
    peachpuff ffdab9 peru cd853f pink ffc0cb plum dda0dd powderblue b0e0e6 purple 800080
    rebeccapurple 663399 red ff0000 rosybrown bc8f8f royalblue 4169e1 saddlebrown 8b4513
    salmon fa8072 sandybrown f4a460 seagreen 2e8b57 seashell fff5ee sienna a0522d silver c0c0c0
    skyblue 87ceeb slateblue 6a5acd slategray 708090 slategrey 708090 snow fffafa
    springgreen 00ff7f steelblue 4682b4 tan d2b48c teal 008080 thistle d8bfd8 tomato ff6347
    turquoise 40e0d0 violet ee82ee wheat f5deb3 white ffffff whitesmoke f5f5f5 yellow ffff00
    yellowgreen 9acd32

"""
_words = _NAMED_TABLE.split()
NAMED_COLORS: Final[Mapping[str, tuple[int, int, int]]] = {
    name: (int(hx[0:2], 16), int(hx[2:4], 16), int(hx[4:6], 16))
    for name, hx in zip(_words[::2], _words[1::2], strict=True)
}
del _words

_HEX: Final = re.compile(r"#?([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_FUNC: Final = re.compile(r"(rgba?)\(\s*(.*?)\s*\)")
_NUMBER: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?%?")
_KEYS: Final = (("red", "green", "blue", "alpha"), ("r", "g", "b", "a"))


def parse_color(value: str | Mapping[str, Any] | Sequence[int | float]) -> RGBA:
    """Return ``(r, g, b, a)`` with every channel 0..255; see the module docstring."""
    if isinstance(value, str):
        return _parse_str(value)
    if isinstance(value, Mapping):
        return _parse_mapping(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return _parse_sequence(value)
    raise _bad(value, "expected a string, an object or a list")


def _bad(value: object, why: str) -> InvalidOptions:
    return InvalidOptions(f"invalid colour {value!r}: {why}", hint=_HINT)


def _parse_str(value: str) -> RGBA:
    text = value.strip().lower()
    if text == "transparent":
        return (0, 0, 0, 0)
    if text in NAMED_COLORS:
        r, g, b = NAMED_COLORS[text]
        return (r, g, b, 255)
    if m := _HEX.fullmatch(text):
        digits = m.group(1)
        if len(digits) <= 4:
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6:
            digits += "ff"
        r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
        return (r, g, b, a)
    if m := _FUNC.fullmatch(text):
        return _parse_css_function(value, m.group(2))
    raise _bad(value, "not a hex colour, CSS colour name or rgb()/rgba()")


def _parse_css_function(value: str, body: str) -> RGBA:
    if "," in body:
        parts = [p.strip() for p in body.split(",")]
    else:
        colour, _, alpha_token = body.partition("/")
        parts = colour.split()
        if alpha_token.strip():
            parts.append(alpha_token.strip())
        elif "/" in body:
            raise _bad(value, "missing alpha after '/'")
    if len(parts) not in (3, 4) or not all(_NUMBER.fullmatch(p) for p in parts):
        raise _bad(value, "rgb()/rgba() takes three channels and an optional alpha")
    channels = [_css_channel(p) for p in parts[:3]]
    alpha = _css_alpha(parts[3]) if len(parts) == 4 else 255
    return (channels[0], channels[1], channels[2], alpha)


def _css_channel(token: str) -> int:
    v = float(token[:-1]) / 100.0 * 255.0 if token.endswith("%") else float(token)
    return _clamp_round(v)


def _css_alpha(token: str) -> int:
    v = float(token[:-1]) / 100.0 if token.endswith("%") else float(token)
    return _clamp_round(v * 255.0)


def _clamp_round(v: float) -> int:
    return math.floor(min(max(v, 0.0), 255.0) + 0.5)


def _parse_mapping(value: Mapping[str, Any]) -> RGBA:
    for keys in _KEYS:
        if keys[0] in value:
            unknown = set(value) - set(keys)
            if unknown:
                raise _bad(value, f"unexpected key(s) {sorted(map(str, unknown))}")
            missing = [k for k in keys[:3] if k not in value]
            if missing:
                raise _bad(value, f"missing {', '.join(missing)}")
            rgb = [_channel(value, value[k], k) for k in keys[:3]]
            alpha = _alpha(value, value[keys[3]]) if keys[3] in value else 255
            return (rgb[0], rgb[1], rgb[2], alpha)
    raise _bad(value, "expected keys red, green, blue[, alpha] or r, g, b[, a]")


def _parse_sequence(value: Sequence[Any]) -> RGBA:
    if len(value) not in (3, 4):
        raise _bad(value, f"expected 3 or 4 numbers, got {len(value)}")
    rgb = [_channel(value, v, "rgb"[i]) for i, v in enumerate(value[:3])]
    alpha = _alpha(value, value[3]) if len(value) == 4 else 255
    return (rgb[0], rgb[1], rgb[2], alpha)


def _number(whole: object, v: Any, name: str) -> float:
    # bool is an int subclass; True is no colour channel.
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise _bad(whole, f"{name} must be a number, got {v!r}")
    return float(v)


def _channel(whole: object, v: Any, name: str) -> int:
    x = _number(whole, v, name)
    if not 0.0 <= x <= 255.0:
        raise _bad(whole, f"{name} must be in 0..255, got {v!r}")
    return _clamp_round(x)


def _alpha(whole: object, v: Any) -> int:
    x = _number(whole, v, "alpha")
    if 0.0 <= x <= 1.0:
        return _clamp_round(x * 255.0)
    if 1.0 < x <= 255.0:
        return _clamp_round(x)
    raise _bad(whole, f"alpha must be a fraction 0..1 or a value 1..255, got {v!r}")
