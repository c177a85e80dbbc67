from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from psd_tools import PSDImage
from psd_tools.compression import rle

from cleancut.core import psd, vector
from cleancut.errors import ImageTooLarge, InvalidInput
from tests.core.test_photoshop import iou, psd_tools_subpaths, sample_image

EXIFTOOL = shutil.which("exiftool")


def open_psd(data: bytes) -> PSDImage:
    return PSDImage.open(io.BytesIO(data))


def test_psd_tools_reads_layer_mask_composite_and_paths() -> None:
    rgb, alpha = sample_image()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    paths = vector.trace(alpha)
    doc = open_psd(psd.write_psd(rgb, alpha, subpaths=paths, icc_profile=icc))
    assert (doc.width, doc.height, doc.channels, doc.depth) == (160, 120, 4, 8)
    assert len(doc) == 1
    (layer,) = doc
    assert layer.name == "Original" and layer.visible and layer.opacity == 255
    assert layer.bbox == (0, 0, 160, 120)
    # Every pixel of the original, opaque; the matte as a non-destructive user mask.
    pixels = np.asarray(layer.topil())
    assert np.array_equal(pixels[..., :3], rgb) and pixels[..., 3].min() == 255
    assert layer.has_mask() and layer.mask.bbox == (0, 0, 160, 120)
    assert np.array_equal(np.asarray(layer.mask.topil()), alpha)
    # The merged image is the cut-out: its alpha is the matte and its colour, once psd-tools
    # takes off the white Photoshop composites it over, the photo (premultiplied, ±1).
    merged = np.asarray(doc.topil())
    assert merged.shape == (120, 160, 4) and np.array_equal(merged[..., 3], alpha)
    a = alpha[..., None].astype(int)
    assert np.abs(merged[..., :3] * a // 255 - rgb * a // 255).max() <= 1
    # Resources: the ICC profile and the clipping path.
    assert doc.image_resources[1039].data == icc
    assert doc.image_resources.get_data(2999) == "Clipping Path"
    decoded = psd_tools_subpaths(doc.image_resources[2000].data, 160, 120)
    assert iou(vector.rasterize(decoded, 160, 120), alpha) >= 0.99


def test_psd_tools_composites_the_layer_through_its_mask() -> None:
    rgb, alpha = sample_image()
    doc = open_psd(psd.write_psd(rgb, alpha))
    rendered = np.asarray(doc.composite(force=True))
    assert np.abs(rendered[..., 3].astype(int) - alpha).max() <= 1


def test_pillow_reads_the_composite() -> None:
    rgb, alpha = sample_image()
    with Image.open(io.BytesIO(psd.write_psd(rgb, alpha))) as im:
        assert im.format == "PSD" and im.mode == "RGBA" and im.size == (160, 120)
        pixels = np.asarray(im)
    assert np.array_equal(pixels[..., 3], alpha)
    opaque = alpha == 255
    assert np.array_equal(pixels[..., :3][opaque], rgb[opaque])
    assert (pixels[..., :3][alpha == 0] == 255).all()  # white where transparent


def test_no_optional_resources_unless_asked() -> None:
    rgb, alpha = sample_image()
    doc = open_psd(psd.write_psd(rgb, alpha))
    assert not {1039, 2000, 2999} & set(doc.image_resources.keys())


def test_packbits_rows_decode_with_psd_tools() -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        w = int(rng.integers(1, 700))
        plane = rng.integers(0, 3, (4, w)).astype(np.uint8)
        if trial % 3 == 0:  # long runs that need splitting at 128
            plane = np.repeat(plane, 150, axis=1)[:, :w]
        if trial % 5 == 0:
            plane[:] = 9
        counts, data = psd.packbits(plane)
        assert counts.dtype == np.dtype(">u2") and int(counts.sum()) == len(data)
        pos = 0
        for row, n in zip(plane, counts.tolist(), strict=True):
            assert bytes(rle.decode(data[pos : pos + n], w)) == row.tobytes()
            pos += n
    flat = np.full((3, 1000), 255, np.uint8)
    assert psd.packbits(flat)[0].tolist() == [16, 16, 16]  # 8 repeat packets a row


def test_invalid_inputs() -> None:
    rgb, alpha = sample_image()
    with pytest.raises(InvalidInput):
        psd.write_psd(rgb, alpha[:-1])
    with pytest.raises(InvalidInput):
        psd.write_psd(rgb[..., :2], alpha)
    with pytest.raises(ImageTooLarge):
        psd.write_psd(np.zeros((1, 30001, 3), np.uint8), np.zeros((1, 30001), np.uint8))


def test_exiftool_reads_the_psd(tmp_path: Path) -> None:
    rgb, alpha = sample_image()
    path = tmp_path / "cut.psd"
    path.write_bytes(psd.write_psd(rgb, alpha, subpaths=vector.trace(alpha)))
    assert EXIFTOOL, "exiftool is missing: scripts/setup.sh installs libimage-exiftool-perl"
    out = subprocess.run(
        [EXIFTOOL, "-s2", "-LayerCount", "-LayerNames", "-ClippingPathName", "-validate", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "LayerCount: 1" in out and "LayerNames: Original" in out
    assert "ClippingPathName: Clipping Path" in out and "Validate: OK" in out
