"""The effect flags of `cleancut remove`: backgrounds, shadow, layout and the
extra output formats, checked by opening what the CLI wrote."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage

from cleancut.cli_effects import background_fields
from cleancut.core import photoshop
from cleancut.errors import InvalidOptions
from tests.cli_support import fails, load, ok, write_square

pytestmark = pytest.mark.usefixtures("hermetic_env")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_square(tmp_path / "in.png")


def test_colour_background_and_trim(tiny: str, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    ok("remove", photo, "-m", tiny, "-o", out, "--bg", "#00ff00", "--trim", "--margin", "10px")
    img = load(out)
    assert img.mode == "RGB"
    assert abs(img.size[0] - 120) <= 4 and abs(img.size[1] - 90) <= 4
    assert np.asarray(img)[2, 2].tolist() == [0, 255, 0]


def test_gradient_background(tiny: str, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    ok("remove", photo, "-m", tiny, "-o", out, "--bg", "gradient(red, blue, 90)")
    px = np.asarray(load(out))
    assert px[3, 2, 0] > 200 and px[3, 197, 2] > 200


def test_blur_and_shadow(tiny: str, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.webp"
    ok(
        "remove",
        photo,
        "-m",
        tiny,
        "-o",
        out,
        "--blur",
        "30",
        "--shadow",
        "60",
    )
    img = load(out)
    assert img.format == "WEBP" and img.mode == "RGB"


def test_image_background(tiny: str, photo: Path, tmp_path: Path) -> None:
    bg = tmp_path / "bg.png"
    Image.new("RGB", (40, 30), (10, 20, 200)).save(bg)
    out = tmp_path / "out.png"
    ok("remove", photo, "-m", tiny, "-o", out, "--bg-image", bg)
    assert np.asarray(load(out))[2, 2].tolist() == [10, 20, 200]


@pytest.mark.parametrize(("suffix", "fmt"), [(".avif", "AVIF"), (".tif", "TIFF")])
def test_extra_raster_formats(
    tiny: str, photo: Path, tmp_path: Path, suffix: str, fmt: str
) -> None:
    out = tmp_path / f"out{suffix}"
    ok("remove", photo, "-m", tiny, "-o", out)
    img = load(out)
    assert img.format == fmt and img.mode == "RGBA"


def test_psd_svg_and_clip_path(tiny: str, photo: Path, tmp_path: Path) -> None:
    ok("remove", photo, "-m", tiny, "-o", tmp_path / "a.psd")
    doc = PSDImage.open(tmp_path / "a.psd")
    assert len(doc) == 1 and doc[0].has_mask()
    ok("remove", photo, "-m", tiny, "-o", tmp_path / "a.svg")
    assert ET.parse(tmp_path / "a.svg").getroot().tag.endswith("svg")
    ok("remove", photo, "-m", tiny, "-o", tmp_path / "a.jpg", "--clip-path")
    data = (tmp_path / "a.jpg").read_bytes()
    assert photoshop.clipping_path_name(photoshop.jpeg_irb(data)) is not None
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"


def test_bad_effect_flags_fail_cleanly(tiny: str, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    assert "colour" in fails("remove", photo, "-m", tiny, "-o", out, "--bg", "nocolour").output
    assert (
        "one background"
        in fails("remove", photo, "-m", tiny, "-o", out, "--bg", "red", "--blur", "10").output
    )
    assert "--margin" in fails("remove", photo, "-m", tiny, "-o", out, "--margin", "x").output
    assert "clipping path" in fails("remove", photo, "-m", tiny, "-o", out, "--clip-path").output
    fails("remove", photo, "-m", tiny, "-o", out, "--shadow", "101", code=2)


def test_background_flag_parsing() -> None:
    assert background_fields(None, None, "fill", None) == {"kind": "transparent"}
    assert background_fields("transparent", None, "fill", None) == {"kind": "transparent"}
    assert background_fields("#fff", None, "fill", None)["color"] == (255, 255, 255, 255)
    g = background_fields("linear-gradient(45deg, #000, white)", None, "fill", None)
    assert (g["kind"], g["angle"], g["color2"]) == ("gradient", 45.0, (255, 255, 255, 255))
    g = background_fields("gradient(rgb(1, 2, 3), red)", None, "fill", None)
    assert (g["color"], g["angle"]) == ((1, 2, 3, 255), 180.0)
    with pytest.raises(InvalidOptions, match="two colours"):
        background_fields("gradient(red)", None, "fill", None)


def _alpha(path: Path) -> np.ndarray:
    return np.asarray(load(path).convert("RGBA"))[..., 3].astype(int)


def test_refine_levels(tiny: str, photo: Path, tmp_path: Path) -> None:
    # The tiny model sees the photo at 64² and blurs the square's edge over several pixels;
    # refinement puts it back on the photo's own edge (the square's true outline).
    truth = np.zeros((150, 200), int)
    truth[40:110, 50:150] = 255
    errors = {}
    for level in ("0", "1", "2", "3"):
        out = tmp_path / f"l{level}.png"
        ok("remove", photo, "-m", tiny, "-o", out, "--refine", level)
        errors[level] = np.abs(_alpha(out) - truth).mean()
    assert all(errors[lv] < errors["0"] for lv in ("1", "2", "3")), errors
    default = tmp_path / "default.png"
    ok("remove", photo, "-m", tiny, "-o", default)
    np.testing.assert_array_equal(_alpha(default), _alpha(tmp_path / "l2.png"))


def test_decontaminate_flag_changes_only_soft_edges(tiny: str, photo: Path, tmp_path: Path) -> None:
    plain, clean = tmp_path / "plain.png", tmp_path / "clean.png"
    ok("remove", photo, "-m", tiny, "-o", plain, "--refine", "0")
    ok("remove", photo, "-m", tiny, "-o", clean, "--refine", "0", "--decontaminate", "1")
    a, b = np.asarray(load(plain)), np.asarray(load(clean))
    np.testing.assert_array_equal(a[..., 3], b[..., 3])
    soft = (a[..., 3] > 0) & (a[..., 3] < 255)
    opaque = a[..., 3] == 255
    np.testing.assert_array_equal(a[opaque], b[opaque])
    # The dark background bled into the bright square's soft edge; decontamination
    # brings those pixels back toward the square's own colour (235, 230, 225).
    subject = np.array([235, 230, 225])
    before = np.abs(a[soft][:, :3].astype(int) - subject).mean()
    after = np.abs(b[soft][:, :3].astype(int) - subject).mean()
    assert after < 0.5 * before, (before, after)


def test_refine_flags_are_validated(tiny: str, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    assert (
        "--refine" in fails("remove", photo, "-m", tiny, "-o", out, "--refine", "4", code=2).output
    )
    fails("remove", photo, "-m", tiny, "-o", out, "--refine", "x", code=2)
    fails("remove", photo, "-m", tiny, "-o", out, "--decontaminate", "1.5", code=2)
    fails("remove", photo, "-m", tiny, "-o", out, "--decontaminate", "-0.1", code=2)
    assert not out.exists()


def test_refine_help_names_the_default_level() -> None:
    from cleancut.core.types import DEFAULT_REFINE_LEVEL

    help_text = ok("remove", "--help").output
    assert f"(default: {DEFAULT_REFINE_LEVEL})" in " ".join(help_text.split())
