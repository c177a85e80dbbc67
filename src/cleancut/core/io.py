"""Image decode and encode: the only place in cleancut that touches file formats.

The work lives in ``io_decode`` (untrusted bytes in, 8-bit sRGB + alpha out) and
``io_encode`` (pixels in, file bytes out); this module is the stable import path.
"""

from __future__ import annotations

from cleancut.core.io_decode import INPUT_FORMATS, decode, sniff_format, srgb_icc_profile
from cleancut.core.io_encode import ENCODE_FORMATS, encode, flatten

__all__ = [
    "ENCODE_FORMATS",
    "INPUT_FORMATS",
    "decode",
    "encode",
    "flatten",
    "sniff_format",
    "srgb_icc_profile",
]
