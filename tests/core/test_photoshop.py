from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from psd_tools.psd.image_resources import ImageResources
from psd_tools.psd.vector import Path as PsdPath
from psd_tools.psd.vector import Subpath as PsdSubpath

import cleancut
from cleancut.core import photoshop, vector
from cleancut.core.photoshop import Resource
from cleancut.core.predict import ModelPool
from cleancut.core.vector import Knot, Subpath
from cleancut.errors import CorruptImage, InvalidInput, InvalidOptions
from tests.conftest import EVAL, require_shared

EXIFTOOL = shutil.which("exiftool")


# ------------------------------------------------------------------------------ helpers


def iou(a: np.ndarray, b: np.ndarray) -> float:
    fa, fb = a >= 128, b >= 128
    return float((fa & fb).sum() / max((fa | fb).sum(), 1))


def sample_image(h: int = 120, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A gradient photo and a soft disc matte with a hole."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], 2).astype(np.uint8)
    r = np.hypot(xx + 0.5 - w / 2, yy + 0.5 - h / 2)
    alpha = (np.clip(min(h, w) / 3 - r + 0.5, 0, 1) * 255 + 0.5).astype(np.uint8)
    alpha[r < min(h, w) / 8] = 0
    return rgb, alpha


def psd_tools_resources(irb: bytes) -> ImageResources:
    """psd-tools' reader for the image resources section (a u32 length, then the blocks)."""
    return ImageResources.frombytes(struct.pack(">I", len(irb)) + irb)


def psd_tools_subpaths(data: bytes, width: int, height: int) -> list[Subpath]:
    """Decode a path resource with psd-tools (not our reader); points come as (y, x) / size."""
    out = []
    for item in PsdPath.frombytes(data):
        if isinstance(item, PsdSubpath):
            out.append(
                Subpath(
                    tuple(
                        Knot(
                            preceding=(k.preceding[1] * width, k.preceding[0] * height),
                            anchor=(k.anchor[1] * width, k.anchor[0] * height),
                            leaving=(k.leaving[1] * width, k.leaving[0] * height),
                        )
                        for k in item
                    ),
                    closed=item.is_closed(),
                )
            )
    return out


def app13_payloads(jpeg: bytes) -> list[bytes]:
    """The "Photoshop 3.0" APP13 payloads, found by an independent marker walk."""
    out, pos = [], 2
    while jpeg[pos + 1] != 0xDA:
        marker, length = jpeg[pos + 1], struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        body = jpeg[pos + 4 : pos + 2 + length]
        if marker == 0xED and body.startswith(b"Photoshop 3.0\0"):
            out.append(body[14:])
        pos += 2 + length
    return out


def markers(jpeg: bytes) -> list[int]:
    out, pos = [], 2
    while jpeg[pos + 1] != 0xDA:
        out.append(jpeg[pos + 1])
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    return out


def jpeg_bytes(rgb: np.ndarray, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, **kwargs)
    return buf.getvalue()


def exiftool(path: Path, *args: str) -> bytes:
    assert EXIFTOOL, "exiftool is missing: scripts/setup.sh installs libimage-exiftool-perl"
    return subprocess.run([EXIFTOOL, *args, str(path)], check=True, capture_output=True).stdout


SQUARE = [Subpath(tuple(Knot(p, p, p) for p in [(2, 2), (8, 2), (8, 8), (2, 8)]))]


# ------------------------------------------------------------------------------ IRB bytes


def test_square_matches_the_spec_dump_byte_for_byte() -> None:
    irb = photoshop.path_resources(SQUARE, 10, 10, name="Path 1 ")
    want = b"8BIM\x07\xd0\x07Path 1 \x00\x00\x00\xb6"
    want += b"\x00\x06" + bytes(24) + b"\x00\x08" + bytes(24)
    want += b"\x00\x00\x00\x04" + bytes(22)
    for y, x in [(0x333333,) * 2, (0x333333, 0xCCCCCD), (0xCCCCCD,) * 2, (0xCCCCCD, 0x333333)]:
        want += b"\x00\x02" + struct.pack(">6i", y, x, y, x, y, x)
    want += b"8BIM\x0b\xb7\x00\x00\x00\x00\x00\x0e\x07Path 1 " + bytes(6)
    assert irb == want


def test_records_fill_rule_first_and_2999_names_the_path() -> None:
    alpha = sample_image()[1]
    paths = vector.trace(alpha)
    irb = photoshop.path_resources(paths, 160, 120, flatness=1.5)
    (path, clip) = photoshop.parse_irb(irb)
    assert (path.id, path.name, clip.id) == (2000, "Clipping Path", 2999)
    assert len(path.data) % 26 == 0
    sel = [struct.unpack(">H", path.data[i : i + 2])[0] for i in range(0, len(path.data), 26)]
    assert sel[:3] == [6, 8, 0]  # fill rule, initial fill rule, first subpath length
    assert path.data[2:26] == bytes(24) and path.data[28:52] == bytes(24)
    counts = [
        struct.unpack(">H", path.data[i + 2 : i + 4])[0]
        for i in range(0, len(path.data), 26)
        if sel[i // 26] == 0
    ]
    assert counts == [len(p.knots) for p in paths] and len(counts) == 2
    assert set(sel[2:]) <= {0, 1, 2} and sel.count(1) > 0  # closed knots, smooth ones linked
    # 2999: the name (odd length, unpadded), flatness as 16.16, fill rule 0.
    assert clip.data == b"\x0dClipping Path" + struct.pack(">iH", 0x18000, 0)
    assert photoshop.clipping_path_name(irb) == "Clipping Path"


def test_fixed_point_is_big_endian_relative_and_clamped() -> None:
    knot = Knot(preceding=(-400.0, 7.5), anchor=(50.0, 25.0), leaving=(1000.0, 30.0))
    data = photoshop.path_data([Subpath((knot,), closed=False)], 100, 50)
    assert len(data) == 4 * 26
    assert struct.unpack(">HH", data[52:56]) == (3, 1)  # open subpath with one knot
    sel, *values = struct.unpack(">H6i", data[78:104])
    assert sel == 5  # open and unlinked: the handles are not opposite
    # (y, x) pairs for preceding, anchor, leaving, as fractions of height and width.
    assert values == [round(0.15 * 2**24), -4 * 2**24, 2**23, 2**23, round(0.6 * 2**24), 10 * 2**24]
    far = Subpath((Knot((-5000.0, 0.0), (0.0, 0.0), (5000.0, 0.0)),))
    *_, pre_x, _, _, _, lea_x = struct.unpack(">H6i", photoshop.path_data([far], 100, 50)[-26:])
    assert (pre_x, lea_x) == (-(2**28), 2**28 - 1)  # clamped to -16 <= v < 16


def test_path_round_trip_through_our_reader_and_psd_tools() -> None:
    alpha = sample_image()[1]
    paths = vector.trace(alpha)
    irb = photoshop.path_resources(paths, 160, 120)
    (saved,) = photoshop.read_paths(irb, 160, 120)
    assert saved.clipping and saved.name == "Clipping Path"
    for ours, back in zip(paths, saved.subpaths, strict=True):
        for a, b in zip(ours.knots, back.knots, strict=True):
            for p, q in ((a.preceding, b.preceding), (a.anchor, b.anchor), (a.leaving, b.leaving)):
                assert p == pytest.approx(q, abs=1e-4)
    res = psd_tools_resources(irb)
    assert list(res.keys()) == [2000, 2999]
    assert res[2000].name == "Clipping Path" and res.get_data(2999) == "Clipping Path"
    decoded = psd_tools_subpaths(res[2000].data, 160, 120)
    assert [len(p.knots) for p in decoded] == [len(p.knots) for p in paths]
    assert iou(vector.rasterize(decoded, 160, 120), alpha) >= 0.99


def test_irb_errors_and_names() -> None:
    with pytest.raises(CorruptImage):
        photoshop.parse_irb(b"XXXX" + bytes(20))
    with pytest.raises(CorruptImage):
        photoshop.parse_irb(photoshop.path_resources(SQUARE, 10, 10)[:-3])
    with pytest.raises(CorruptImage):
        photoshop.parse_path_data(bytes(27), 10, 10)
    with pytest.raises(InvalidOptions):
        photoshop.path_resources(SQUARE, 10, 10, name="Pfad ✓")  # not MacRoman
    with pytest.raises(InvalidOptions):
        photoshop.path_resources(SQUARE, 10, 10, flatness=200)
    # MacRoman names survive; an even-length name is written unpadded, as Photoshop does.
    irb = photoshop.path_resources(SQUARE, 10, 10, name="Détour")
    assert photoshop.clipping_path_name(irb) == "Détour"
    assert photoshop.parse_irb(irb)[1].data == b"\x06D\x8etour" + bytes(6)
    assert irb.endswith(b"\x06D\x8etour" + bytes(7))  # 13 data bytes, then the block pad
    assert [
        r.id for r in photoshop.parse_irb(photoshop.path_resources(SQUARE, 9, 9, clipping=False))
    ] == [2000]


# ------------------------------------------------------------------------------ JPEG


def test_jpeg_embedding_is_readable_everywhere() -> None:
    rgb, alpha = sample_image()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010E] = "a test"
    original = jpeg_bytes(rgb, icc_profile=icc, exif=exif.tobytes())
    irb = photoshop.path_resources(vector.trace(alpha), 160, 120)
    out = photoshop.embed_in_jpeg(original, irb)
    # After JFIF, Exif and ICC, before the tables; the rest of the file is untouched.
    assert markers(out)[:4] == [0xE0, 0xE1, 0xE2, 0xED] and markers(out)[4] < 0xE0
    assert len(out) == len(original) + 4 + 14 + len(irb)
    with Image.open(io.BytesIO(out)) as im, Image.open(io.BytesIO(original)) as ref:
        assert im.info["icc_profile"] == icc and im.getexif()[0x010E] == "a test"
        assert np.array_equal(np.asarray(im), np.asarray(ref))
        assert im.info["photoshop"][2000] == photoshop.parse_irb(irb)[0].data  # Pillow's parser
    (payload,) = app13_payloads(out)
    assert payload == irb == photoshop.jpeg_irb(out)
    res = psd_tools_resources(payload)
    decoded = psd_tools_subpaths(res[2000].data, 160, 120)
    assert iou(vector.rasterize(decoded, 160, 120), alpha) >= 0.99


def polygon_path(knots: int) -> list[Subpath]:
    theta = np.linspace(0, 2 * np.pi, knots, endpoint=False)
    pts = [(80 + 50 * np.cos(t), 60 + 50 * np.sin(t)) for t in theta.tolist()]
    return [Subpath(tuple(Knot(p, p, p) for p in pts))]


def test_large_paths_span_several_app13_segments() -> None:
    irb = photoshop.path_resources(polygon_path(6000), 160, 120)
    assert len(irb) > 2 * 65519
    out = photoshop.embed_in_jpeg(jpeg_bytes(sample_image()[0]), irb)
    payloads = app13_payloads(out)
    assert len(payloads) == 3 and all(len(p) <= 65519 for p in payloads[:2])
    assert markers(out)[1:4] == [0xED] * 3  # consecutive, right after JFIF
    assert b"".join(payloads) == irb
    with Image.open(io.BytesIO(out)) as im:
        im.load()
    decoded = psd_tools_subpaths(psd_tools_resources(b"".join(payloads))[2000].data, 160, 120)
    assert len(decoded[0].knots) == 6000


def test_existing_app13_is_merged_not_duplicated() -> None:
    iptc = Resource(1028, b"\x1c\x02\x00\x00\x02\x00\x04")
    old = photoshop.build_irb([iptc]) + photoshop.path_resources(SQUARE, 160, 120, name="Old")
    original = jpeg_bytes(sample_image()[0])
    with_app13 = original[:20] + photoshop.app13_segments(old) + original[20:]  # after JFIF
    new = photoshop.path_resources(vector.trace(sample_image()[1]), 160, 120)
    out = photoshop.embed_in_jpeg(with_app13, new)
    (payload,) = app13_payloads(out)
    resources = photoshop.parse_irb(payload)
    assert [(r.id, r.name) for r in resources] == [
        (1028, ""),
        (2000, "Clipping Path"),
        (2999, ""),
    ]
    assert resources[0].data == iptc.data
    assert photoshop.clipping_path_name(payload) == "Clipping Path"


def test_jpeg_errors() -> None:
    with pytest.raises(InvalidInput):
        photoshop.embed_in_jpeg(b"\x89PNG\r\n", b"")
    with pytest.raises(CorruptImage):
        photoshop.embed_in_jpeg(b"\xff\xd8\xff\xe0\x00\x40JFIF", b"")


# ------------------------------------------------------------------------------ TIFF


@pytest.mark.parametrize("channels", [3, 4])
def test_tiff_carries_the_paths(channels: int) -> None:
    rgb, alpha = sample_image()
    pixels = np.dstack([rgb, alpha]) if channels == 4 else rgb
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    irb = photoshop.path_resources(vector.trace(alpha), 160, 120)
    data = photoshop.tiff_with_paths(pixels, irb, icc_profile=icc)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == ("RGBA" if channels == 4 else "RGB")
        assert im.info["compression"] == "tiff_adobe_deflate"
        assert im.tag_v2.tagtype[34377] == 1  # BYTE
        assert bytes(im.tag_v2[34377]) == irb
        assert im.info["icc_profile"] == icc
        if channels == 4:
            assert im.tag_v2[338] == (2,)  # ExtraSamples: unassociated alpha
        assert np.array_equal(np.asarray(im), pixels)
    (saved,) = photoshop.read_paths(irb, 160, 120)
    assert iou(vector.rasterize(saved.subpaths, 160, 120), alpha) >= 0.99


def test_tiff_rejects_odd_pixels() -> None:
    with pytest.raises(InvalidInput):
        photoshop.tiff_with_paths(np.zeros((4, 4, 2), np.uint8), b"")


# ------------------------------------------------------------------------------ exiftool


@pytest.mark.parametrize("container", ["jpeg", "jpeg-multi-segment", "tiff"])
def test_exiftool_reads_the_paths(tmp_path: Path, container: str) -> None:
    rgb, alpha = sample_image()
    paths = polygon_path(6000) if container == "jpeg-multi-segment" else vector.trace(alpha)
    irb = photoshop.path_resources(paths, 160, 120)
    if container == "tiff":
        data, path = photoshop.tiff_with_paths(rgb, irb), tmp_path / "cut.tif"
    else:
        data, path = photoshop.embed_in_jpeg(jpeg_bytes(rgb), irb), tmp_path / "cut.jpg"
    path.write_bytes(data)
    assert exiftool(path, "-s3", "-ClippingPathName") == b"Clipping Path\n"
    # exiftool joins APP13 segments itself; it hands back the path records unchanged.
    assert exiftool(path, "-b", "-u", "-Photoshop_0x07d0") == photoshop.parse_irb(irb)[0].data
    assert b"Warning" not in exiftool(path, "-warning", "-a")


# ------------------------------------------------------------------------------ real photos


@pytest.mark.model
@pytest.mark.parametrize("rel", ["davis16/dog_00000.jpg", "people-removebg/p001.jpg"])
def test_real_photo_path_matches_the_matte(real_pool: ModelPool, rel: str) -> None:
    require_shared()
    folder, name = rel.split("/")
    result = cleancut.remove(EVAL / folder / "images" / name, pool=real_pool)
    w, h = result.size
    paths = vector.trace(result.alpha)
    assert paths
    jpeg = photoshop.embed_in_jpeg(
        jpeg_bytes(result.image.rgb), photoshop.path_resources(paths, w, h)
    )
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.size == (w, h)
    res = psd_tools_resources(b"".join(app13_payloads(jpeg)))
    assert res.get_data(2999) == "Clipping Path"
    decoded = psd_tools_subpaths(res[2000].data, w, h)
    assert iou(vector.rasterize(decoded, w, h), result.alpha) >= 0.99
