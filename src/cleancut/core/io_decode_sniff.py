"""Name an image format from its bytes: file names and declared media types lie.

Most formats announce themselves in their first bytes. Two need more care:

* TGA has no signature at all, so its 18-byte header must be consistent in every
  field that matters (colour-map type, image type, pixel depth for that type,
  attribute bits, non-zero size) before the bytes are taken for one: text never
  passes (its second byte would have to be 0 or 1) and random bytes almost never do.
* Camera RAWs built on TIFF (DNG, NEF, ARW, PEF, SRW...) start like any TIFF, and
  Pillow would happily return their small preview. They are told apart by content:
  a DNGVersion tag, or a colour-filter-array (or linear raw) image in IFD0, its
  SubIFDs or the IFD chain. Given only a file's head, those IFDs may lie beyond it
  and the answer is then plain "tiff"; ``decode`` always sniffs the whole file.
"""

from __future__ import annotations

import struct
from typing import Final

#: Camera RAW formats, all decoded by LibRaw.
RAW_FORMATS: Final = frozenset(
    {"dng", "cr2", "cr3", "crw", "nef", "arw", "pef", "srw", "raf", "orf", "rw2", "mrw", "x3f"}
    | {"camera-raw"}  # a TIFF/EP raw from a maker without a name of its own here
)

_BMP_INFO_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_TIFF_MAGIC: Final = (b"II*\x00", b"MM\x00*")
# (offset, bytes, format), first match wins.
_SIGNATURES: Final = (
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"II+\x00", "tiff"),  # BigTIFF; no camera writes its RAWs as one
    (0, b"MM\x00+", "tiff"),
    (0, b"8BPS\x00\x02", "psb"),
    (0, b"8BPS", "psd"),
    (0, b"\x76\x2f\x31\x01", "exr"),
    (0, b"#?RADIANCE\n", "hdr"),
    (0, b"#?RGBE\n", "hdr"),
    (0, b"FUJIFILMCCD-RAW ", "raf"),
    (0, b"IIRO", "orf"),
    (0, b"IIRS", "orf"),
    (0, b"MMOR", "orf"),
    (0, b"IIU\x00", "rw2"),
    (0, b"\x00MRM", "mrw"),
    (0, b"FOVb", "x3f"),
    (6, b"HEAPCCDR", "crw"),
)

# TIFF tags and values that mark a camera RAW.
_DNG_VERSION: Final = 50706
_PHOTOMETRIC: Final = 262
_MAKE: Final = 271
_SUB_IFDS: Final = 330
_RAW_PHOTOMETRICS: Final = frozenset({32803, 34892})  # CFA, LinearRaw
_MAKER_FORMATS: Final = {
    "NIKON": "nef",
    "SONY": "arw",
    "PENTAX": "pef",
    "RICOH": "pef",
    "SAMSUNG": "srw",
}
# Enough for any camera's IFD tree, while a crafted loop or fan-out stays cheap.
_MAX_IFDS: Final = 32
_MAX_SUB_IFDS: Final = 8
_MAX_IFD_ENTRIES: Final = 1024

# TGA image type -> the pixel depths Pillow decodes for it.
_TGA_DEPTHS: Final = {1: (8,), 9: (8,), 2: (16, 24, 32), 10: (16, 24, 32), 3: (8, 16), 11: (8, 16)}
_TGA_COLOUR_MAPPED: Final = (1, 9)
_TGA_MAP_DEPTHS: Final = (16, 24, 32)
# Bits of each pixel that are colour (or a palette index), so the rest may be alpha.
_TGA_COLOUR_BITS: Final = {8: 8, 16: 15, 24: 24, 32: 24}
_TGA_GRAY_TYPES: Final = (3, 11)


def sniff_format(data: bytes) -> str | None:
    """Name the image format of ``data`` (a file, or at least its first 512 bytes), or None."""
    if data[:4] in _TIFF_MAGIC:
        return _sniff_tiff(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    # "BM" alone matches plenty of text, so also require a known info-header size.
    if data[:2] == b"BM" and len(data) >= 18 and _u32le(data, 14) in _BMP_INFO_SIZES:
        return "bmp"
    if data[4:8] == b"ftyp":
        return _sniff_isobmff(data)
    for offset, magic, fmt in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return fmt
    return "tga" if _is_tga_header(data) else None


def _u32le(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _sniff_isobmff(head: bytes) -> str | None:
    box_end = min(int.from_bytes(head[0:4], "big"), len(head), 512)
    if head[8:12] == b"crx ":
        return "cr3"
    # The major brand decides; the compatible brands only matter for generic majors like mif1.
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    for brand in brands:
        if brand in _AVIF_BRANDS:
            return "avif"
        if brand in _HEIF_BRANDS - {b"mif1", b"msf1"}:
            return "heif"
    return "heif" if any(b in _HEIF_BRANDS for b in brands) else None


def _is_tga_header(data: bytes) -> bool:
    """Whether the first 18 bytes are a TGA header Pillow can decode, every field consistent."""
    if len(data) < 18:
        return False
    (_, map_type, image_type, _, map_length, map_depth) = struct.unpack_from("<BBBHHB", data)
    width, height, depth, descriptor = struct.unpack_from("<HHBB", data, 12)
    if depth not in _TGA_DEPTHS.get(image_type, ()) or width == 0 or height == 0:
        return False
    # Bits 6-7 (interleaving) are obsolete and never set by real writers.
    if descriptor & 0xC0:
        return False
    colour_bits = 8 if image_type in _TGA_GRAY_TYPES else _TGA_COLOUR_BITS[depth]
    if descriptor & 0x0F > depth - colour_bits:
        return False
    if map_type == 0:
        return image_type not in _TGA_COLOUR_MAPPED
    return map_type == 1 and map_length > 0 and map_depth in _TGA_MAP_DEPTHS


def _sniff_tiff(data: bytes) -> str:
    if data[:2] == b"II" and data[8:10] == b"CR":
        return "cr2"
    return _tiff_camera_raw(data) or "tiff"


def _tiff_camera_raw(data: bytes) -> str | None:
    """Walk the IFD tree (bounded) looking for what only a camera RAW holds."""
    if len(data) < 8:
        return None
    order = "<" if data[:2] == b"II" else ">"
    pending = [struct.unpack_from(order + "I", data, 4)[0]]
    seen: set[int] = set()
    make = ""
    raw_image = False
    while pending and len(seen) < _MAX_IFDS:
        offset = pending.pop()
        if offset in seen or offset < 8 or offset + 2 > len(data):
            continue
        seen.add(offset)
        tags, next_ifd = _read_ifd(data, offset, order)
        if _DNG_VERSION in tags:
            return "dng"
        typ, _, value_at = tags.get(_PHOTOMETRIC, (0, 0, 0))
        if typ == 3 and struct.unpack_from(order + "H", data, value_at)[0] in _RAW_PHOTOMETRICS:
            raw_image = True
        if _MAKE in tags:
            make = make or _ascii(data, order, *tags[_MAKE])
        if _SUB_IFDS in tags:
            pending.extend(_longs(data, order, *tags[_SUB_IFDS]))
        if next_ifd:
            pending.append(next_ifd)
    if not raw_image:
        return None
    maker = make.split()[0].upper() if make.split() else ""
    return _MAKER_FORMATS.get(maker, "camera-raw")


_Tags = dict[int, tuple[int, int, int]]


def _read_ifd(data: bytes, offset: int, order: str) -> tuple[_Tags, int]:
    """The IFD's tags as tag -> (type, count, offset of the value field), and the next IFD.

    Entries past the end of ``data`` (a head-only sniff) are simply not seen.
    """
    (count,) = struct.unpack_from(order + "H", data, offset)
    available = min(count, (len(data) - offset - 2) // 12, _MAX_IFD_ENTRIES)
    tags: _Tags = {}
    for i in range(available):
        entry = offset + 2 + 12 * i
        tag, typ, n = struct.unpack_from(order + "HHI", data, entry)
        tags[tag] = (typ, n, entry + 8)
    end = offset + 2 + 12 * count
    next_ifd = struct.unpack_from(order + "I", data, end)[0] if end + 4 <= len(data) else 0
    return tags, next_ifd


def _ascii(data: bytes, order: str, typ: int, count: int, value_at: int) -> str:
    if typ != 2:
        return ""
    start = value_at if count <= 4 else struct.unpack_from(order + "I", data, value_at)[0]
    raw = data[start : start + min(count, 64)]
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def _longs(data: bytes, order: str, typ: int, count: int, value_at: int) -> list[int]:
    if typ not in (4, 13) or count == 0:  # LONG or IFD
        return []
    count = min(count, _MAX_SUB_IFDS)
    start = value_at if count == 1 else struct.unpack_from(order + "I", data, value_at)[0]
    if start + 4 * count > len(data):
        return []
    return list(struct.unpack_from(f"{order}{count}I", data, start))
