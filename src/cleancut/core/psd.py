"""A layered Photoshop document (PSD version 1, 8-bit RGB, PackBits channels).

The document holds what a retoucher wants: one layer, "Original", with every pixel of the
photo, opaque, and the matte as its **user layer mask** (channel -2), so the cut-out stays
editable. The merged image (what viewers that ignore layers show) is the cut-out: RGB plus
transparency, stored composited over white the way Photoshop stores it, with a negative layer
count to say its fourth channel is the merged transparency. Optional image resources: the
ICC profile (1039) and the clipping path (2000 + 2999).

Layout: header, colour-mode data, image resources, layer and mask information, merged image
data (Adobe's "Photoshop File Formats Specification"; summary in
``/work/shared/specs/photoshop-path.md`` §5.2). All integers are big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cleancut.core import photoshop
from cleancut.core.types import U8
from cleancut.core.vector import Subpath
from cleancut.errors import ImageTooLarge, InvalidInput

MAX_SIDE = 30000  # version 1 limit
LAYER_NAME = "Original"
_RLE = 1
_TRANSPARENCY, _USER_MASK = -1, -2


def write_psd(
    rgb: U8,
    alpha: U8,
    *,
    subpaths: Sequence[Subpath] | None = None,
    icc_profile: bytes | None = None,
    path_name: str = photoshop.DEFAULT_PATH_NAME,
) -> bytes:
    """The PSD bytes for an H×W×3 ``rgb`` photo and its H×W ``alpha`` matte."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInput("write_psd() needs H×W×3 uint8 RGB")
    if alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]:
        raise InvalidInput("write_psd() needs an H×W uint8 alpha the size of the image")
    h, w = alpha.shape
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise ImageTooLarge(f"a PSD holds at most {MAX_SIDE}×{MAX_SIDE} px; this is {w}×{h}")

    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 4, h, w, 8, 3)
    resources: list[photoshop.Resource] = []
    if icc_profile:
        resources.append(photoshop.Resource(photoshop.ICC_PROFILE, icc_profile))
    irb = photoshop.build_irb(resources)
    if subpaths is not None:
        irb = photoshop.merge_irb(irb, photoshop.path_resources(subpaths, w, h, name=path_name))
    return b"".join(
        [
            header,
            struct.pack(">I", 0),  # colour mode data
            struct.pack(">I", len(irb)),
            irb,
            _layer_and_mask(rgb, alpha),
            _merged(rgb, alpha),
        ]
    )


def _length_block(body: bytes, align: int = 2) -> bytes:
    body += b"\0" * (-len(body) % align)
    return struct.pack(">I", len(body)) + body


def _layer_and_mask(rgb: U8, alpha: U8) -> bytes:
    h, w = alpha.shape
    planes: list[tuple[int, U8]] = [
        (_TRANSPARENCY, np.full((h, w), 255, np.uint8)),
        (0, rgb[..., 0]),
        (1, rgb[..., 1]),
        (2, rgb[..., 2]),
        (_USER_MASK, alpha),
    ]
    encoded = [(cid, _channel(plane)) for cid, plane in planes]
    name = LAYER_NAME.encode("ascii")
    pascal = bytes([len(name)]) + name
    pascal += b"\0" * (-len(pascal) % 4)
    utf16 = LAYER_NAME.encode("utf-16-be")
    luni = struct.pack(">I", len(LAYER_NAME)) + utf16
    luni += b"\0" * (-len(luni) % 4)
    extra = b"".join(
        [
            # User mask: its rectangle (the canvas), default colour 0, flags 0, 2 pad bytes.
            struct.pack(">I4iBB2x", 20, 0, 0, h, w, 0, 0),
            struct.pack(">I", 0),  # no blending ranges
            pascal,
            b"8BIMluni" + struct.pack(">I", len(luni)) + luni,
        ]
    )
    record = b"".join(
        [
            struct.pack(">4iH", 0, 0, h, w, len(encoded)),
            b"".join(struct.pack(">hI", cid, len(data)) for cid, data in encoded),
            b"8BIMnorm",
            struct.pack(">BBBx", 255, 0, 0x08),  # opacity, base clipping, flags (visible)
            struct.pack(">I", len(extra)),
            extra,
        ]
    )
    # A negative layer count: the merged image's first alpha channel is its transparency.
    layer_info = struct.pack(">h", -1) + record + b"".join(data for _, data in encoded)
    global_mask = struct.pack(">I", 0)
    return _length_block(_length_block(layer_info, 4) + global_mask)


def _channel(plane: U8) -> bytes:
    counts, data = packbits(plane)
    return struct.pack(">H", _RLE) + counts.tobytes() + data


def _merged(rgb: U8, alpha: U8) -> bytes:
    """The composite: the cut-out over white (Photoshop's convention), then its alpha."""
    a = alpha.astype(np.uint16)
    white = 255 * (255 - a) + 128
    planes = []
    for c in range(3):
        v = rgb[..., c] * a + white  # c·a + 255·(255 − a), + ½ for rounding; < 2^16
        planes.append(((v + (v >> 8)) >> 8).astype(np.uint8))  # exact round(x / 255)
    coded = [packbits(p) for p in [*planes, alpha]]
    return b"".join(
        [struct.pack(">H", _RLE)]
        + [counts.tobytes() for counts, _ in coded]
        + [data for _, data in coded]
    )


def packbits(plane: U8) -> tuple[NDArray[np.uint16], bytes]:
    """PackBits-encode every row of ``plane``: (big-endian u16 byte count per row, data).

    Vectorised: runs of three or more equal bytes become repeat packets, the bytes between
    them literal packets, both cut at 128 bytes; packets never cross rows.
    """
    h, w = plane.shape
    flat = np.ascontiguousarray(plane).reshape(-1)
    n = flat.size
    eq = np.zeros(n + 2, bool)  # eq[i + 1]: byte i equals byte i + 1 of the same row
    np.equal(flat[1:], flat[:-1], out=eq[1:n])
    eq[w::w] = False
    before, here, after = eq[:n], eq[1 : n + 1], eq[2:]
    prev2 = np.zeros(n, bool)
    prev2[1:] = before[:-1]
    repeat = (prev2 & before) | (before & here) | (here & after)  # in a run of 3 or more
    # Segments: each repeat run alone, the bytes between runs of one row as one literal.
    new = np.ones(n, bool)
    np.not_equal(repeat[1:], repeat[:-1], out=new[1:])
    new[1:] |= repeat[1:] & ~before[1:]
    new[::w] = True
    seg_start = np.flatnonzero(new)
    seg_len = np.diff(seg_start, append=n)
    seg_rep, seg_row = repeat[seg_start], seg_start // w
    # Packets of at most 128 bytes.
    pieces = (seg_len + 127) // 128
    seg = np.repeat(np.arange(len(seg_start)), pieces)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    p_len = np.minimum(seg_len[seg] - 128 * k, 128)
    p_start = seg_start[seg] + 128 * k
    p_rep = seg_rep[seg]
    size = np.where(p_rep, 2, p_len + 1)
    offset = np.cumsum(size) - size
    out = np.empty(int(size.sum()), np.uint8)
    out[offset] = np.where(p_rep, np.where(p_len >= 2, 257 - p_len, 0), p_len - 1)
    rep_at = offset[p_rep] + 1
    out[rep_at] = flat[p_start[p_rep]]
    literal_dst = np.ones(out.size, bool)
    literal_dst[offset] = False
    literal_dst[rep_at] = False
    out[literal_dst] = flat[~repeat]
    counts = np.bincount(seg_row[seg], weights=size, minlength=h).astype(">u2")
    return counts, out.tobytes()
