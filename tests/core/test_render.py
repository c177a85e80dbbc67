"""Every output format of a Result, read back by an independent reader, plus effects
re-applied from a stored original and matte without the model."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage

import cleancut
from cleancut.core import photoshop, vector
from cleancut.core.predict import ModelPool
from cleancut.core.result import Result
from cleancut.errors import InvalidOptions
from tests import tinymodels
from tests.core.test_photoshop import iou, psd_tools_resources, psd_tools_subpaths

BOX = (50, 40, 150, 110)


@pytest.fixture
def result(tiny_pool: ModelPool) -> Result:
    return cleancut.remove(tinymodels.square_image(box=BOX), model="tiny", pool=tiny_pool)


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("png", "PNG"), ("webp", "WEBP"), ("avif", "AVIF"), ("tiff", "TIFF")]
)
def test_raster_cutouts_keep_alpha(result: Result, fmt: str, pil_format: str) -> None:
    img = _open(result.encode(format=fmt))
    assert (img.format, img.mode, img.size) == (pil_format, "RGBA", (200, 150))
    alpha = np.asarray(img)[..., 3].astype(int)
    tolerance = 12 if fmt == "avif" else 0  # AVIF is lossy
    assert np.abs(alpha - result.alpha).max() <= tolerance


def test_jpeg_is_flattened(result: Result) -> None:
    img = _open(result.encode(format="jpeg", flatten_color=(255, 0, 0)))
    assert (img.format, img.mode) == ("JPEG", "RGB")
    r, g, b = np.asarray(img)[5, 5].tolist()
    assert r > 230 and g < 30 and b < 30


def test_mask_formats(result: Result) -> None:
    soft = _open(result.encode(mode="mask"))
    assert soft.mode == "L"
    np.testing.assert_array_equal(np.asarray(soft), result.alpha)
    hard = np.asarray(_open(result.encode(mode="mask", mask="binary", format="tiff")))
    assert set(np.unique(hard).tolist()) <= {0, 255}
    svg = ET.fromstring(result.encode(mode="mask", format="svg"))
    assert svg.tag.endswith("svg")
    with pytest.raises(InvalidOptions, match="not a PSD"):
        result.encode(mode="mask", format="psd")


def test_svg_outline_matches_the_matte(result: Result) -> None:
    root = ET.fromstring(result.encode(format="svg"))
    paths = [e for e in root.iter() if e.tag.endswith("path")]
    assert len(paths) == 1 and paths[0].get("fill-rule") == "evenodd"
    assert root.get("viewBox") == "0 0 200 150"
    raster = vector.rasterize(vector.trace(result.alpha), 200, 150)
    assert iou(raster, result.alpha) >= 0.99


def test_psd_has_the_original_as_a_masked_layer(result: Result) -> None:
    doc = PSDImage.open(io.BytesIO(result.encode(format="psd")))
    (layer,) = doc
    np.testing.assert_array_equal(np.asarray(layer.topil())[..., :3], result.image.rgb)
    np.testing.assert_array_equal(np.asarray(layer.mask.topil()), result.alpha)
    paths = psd_tools_subpaths(doc.image_resources[2000].data, 200, 150)
    assert iou(vector.rasterize(paths, 200, 150), result.alpha) >= 0.99


@pytest.mark.parametrize("fmt", ["jpeg", "tiff"])
def test_clip_path_carries_the_photo_and_the_outline(result: Result, fmt: str) -> None:
    data = result.encode(format=fmt, clip_path=True)
    img = _open(data)
    if fmt == "jpeg":
        irb = photoshop.jpeg_irb(data)
    else:
        irb = bytes(img.tag_v2[photoshop.TIFF_PHOTOSHOP_TAG])  # type: ignore[attr-defined]
    # The Photoshop-path deliverable is the photo itself; the path does the clipping.
    pixels = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(pixels[5, 5] - result.image.rgb[5, 5]).max() <= 8
    resources = psd_tools_resources(irb)
    paths = psd_tools_subpaths(resources[2000].data, 200, 150)
    assert iou(vector.rasterize(paths, 200, 150), result.alpha) >= 0.99
    assert resources.get_data(2999)


def test_clip_path_needs_a_format_that_carries_it(result: Result) -> None:
    with pytest.raises(InvalidOptions, match="clipping path"):
        result.encode(format="png", clip_path=True)


def test_effects_apply_through_encode(result: Result) -> None:
    img = _open(result.encode(kind="color", color=(0, 128, 255, 255), trim=True))
    # The trim box is the subject plus the soft edge the model gives it.
    assert img.mode == "RGB"
    assert abs(img.size[0] - 100) <= 4 and abs(img.size[1] - 70) <= 4
    img = _open(
        result.encode(kind="gradient", color=(255, 0, 0, 255), color2=(0, 0, 255, 255), angle=90)
    )
    left, right = np.asarray(img)[2, 2], np.asarray(img)[2, 197]
    assert left[0] > 200 and right[2] > 200


def test_with_options_keeps_the_matte_and_checks_the_model(result: Result) -> None:
    trimmed = result.with_options(trim=True, kind="color")
    assert trimmed.alpha is result.alpha
    assert trimmed.options.layout.trim and trimmed.options.background.kind == "color"
    assert result.options.layout.trim is False  # the original result is unchanged
    with pytest.raises(InvalidOptions, match="new remove"):
        result.with_options(model="other")
    with pytest.raises(InvalidOptions, match="unknown option"):
        result.with_options(nonsense=1)


def test_compose_entry_point_reapplies_effects_without_a_model(result: Result) -> None:
    original = io.BytesIO()
    Image.fromarray(result.image.rgb).save(original, "PNG")
    mask = io.BytesIO()
    # The model's own matte is what to store: compose() refines it as the options say.
    Image.fromarray(result.model_matte).save(mask, "PNG")
    again = cleancut.compose(
        original.getvalue(), mask.getvalue(), kind="color", color=(255, 255, 255, 255)
    )
    np.testing.assert_array_equal(again.alpha, result.alpha)
    expected = result.encode(kind="color", color=(255, 255, 255, 255))
    assert np.array_equal(np.asarray(_open(again.encode())), np.asarray(_open(expected)))
    small = io.BytesIO()
    Image.fromarray(result.alpha[:10, :10]).save(small, "PNG")
    with pytest.raises(InvalidOptions, match="mask is"):
        cleancut.compose(original.getvalue(), small.getvalue())
