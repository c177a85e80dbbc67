from __future__ import annotations

import io
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from cleancut.core.compose import Composite, compose, cutout, over
from cleancut.core.compose_effects import blur_sigma
from cleancut.core.types import Background, Layout, Length, Options, Shadow
from cleancut.errors import CleancutError, InvalidInput, InvalidOptions
from tests import golden
from tests.golden import assert_image_close

U8 = NDArray[np.uint8]
W, H = 96, 64


def soft_rect(w: int, h: int, box: tuple[int, int, int, int], sigma: float = 1.0) -> U8:
    """A rectangle's matte with soft edges (alpha 255 well inside, 0 well outside)."""
    x, y, bw, bh = box
    hard = np.zeros((h, w), np.float32)
    hard[y : y + bh, x : x + bw] = 255
    if sigma > 0:
        hard = np.asarray(cv2.GaussianBlur(hard, (0, 0), sigma), np.float32)
    return np.clip(hard + 0.5, 0, 255).astype(np.uint8)


def photo(bg: U8, fg_colour: tuple[int, int, int], alpha: U8) -> U8:
    """What a camera would see: the subject mixed with the background at soft edges."""
    a = alpha[..., np.newaxis].astype(np.float32) / 255
    mixed = np.asarray(fg_colour, np.float32) * a + bg.astype(np.float32) * (1 - a)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def stripes(w: int = W, h: int = H) -> U8:
    """A textured background: blue-ish horizontal stripes over a red ramp."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((h, w, 3), np.uint8)
    out[..., 0] = (xx * 200 // max(w - 1, 1)).astype(np.uint8)
    out[..., 1] = 40
    out[..., 2] = np.where((yy // 6) % 2 == 0, 200, 40).astype(np.uint8)
    return out


def ellipse_scene(w: int = W, h: int = H) -> tuple[U8, U8]:
    """Orange ellipse with a soft edge over stripes (the golden scene)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt(((xx - w * 0.5) / (w * 0.22)) ** 2 + ((yy - h * 0.45) / (h * 0.33)) ** 2)
    alpha = np.clip((1 - d) * 255 * 6, 0, 255).astype(np.uint8)
    return photo(stripes(w, h), (240, 140, 30), alpha), alpha


def opts(**kwargs: Any) -> Options:
    return replace(Options(), **kwargs)


def exact_over(fg: U8, alpha: U8, bg: U8) -> U8:
    a = alpha[..., np.newaxis].astype(np.int32)
    return ((fg.astype(np.int32) * a + bg.astype(np.int32) * (255 - a) + 127) // 255).astype(
        np.uint8
    )


def box_of(alpha: NDArray[Any]) -> tuple[int, int, int, int]:
    x, y, w, h = cv2.boundingRect((alpha > 0).astype(np.uint8))
    return (x, y, w, h)


# --- transparent background and straight alpha -------------------------------------


def test_transparent_keeps_alpha_and_straight_colour() -> None:
    rgb, alpha = ellipse_scene()
    fg = np.full_like(rgb, (240, 140, 30))
    out = compose(rgb, alpha, Options(), foreground=fg)
    assert isinstance(out, Composite)
    assert out.pixels.shape == (H, W, 4) and out.has_alpha and out.size == (W, H)
    np.testing.assert_array_equal(out.pixels[..., 3], alpha)
    np.testing.assert_array_equal(out.alpha, alpha)
    # Fully transparent pixels are cleared; soft edges keep the subject's own colour
    # exactly (straight alpha: no darkening towards the edge).
    assert not out.pixels[alpha == 0, :3].any()
    soft = (alpha > 0) & (alpha < 255)
    assert soft.sum() > 50
    np.testing.assert_array_equal(out.pixels[alpha > 0, :3], fg[alpha > 0])


def test_transparent_without_foreground_uses_rgb() -> None:
    rgb, alpha = ellipse_scene()
    out = compose(rgb, alpha, Options())
    np.testing.assert_array_equal(out.pixels[alpha > 0, :3], rgb[alpha > 0])
    assert out.subject_box == box_of(alpha > 8)


def test_empty_matte_gives_empty_box() -> None:
    rgb, _ = ellipse_scene()
    alpha = np.zeros((H, W), np.uint8)
    out = compose(rgb, alpha, opts(layout=Layout(trim=True, scale=0.5)))
    assert out.subject_box == (0, 0, 0, 0)
    assert out.size == (W, H)
    assert not out.pixels.any()


def random_layers() -> tuple[U8, U8, U8]:
    rng = np.random.default_rng(7)
    fg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    fa = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    fa[::4] = 0
    fa[1::4] = 255
    bg = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    bg[::3, ::2, 3] = 0
    bg[bg[..., 3] == 0] = 0  # a transparent pixel has no colour
    return fg, fa, bg


def test_over_matches_porter_duff_reference() -> None:
    fg, fa, bg = random_layers()
    canvas = bg.copy()
    over(canvas, fg, fa)
    af = fa[..., np.newaxis] / 255.0
    ab = bg[..., 3:] / 255.0
    a_out = af + ab * (1 - af)
    premul = fg * af + bg[..., :3] * ab * (1 - af)
    colour = np.divide(premul, a_out, out=np.zeros_like(premul), where=a_out > 0)
    assert np.abs(canvas[..., 3] - a_out[..., 0] * 255).max() <= 0.5 + 1e-6
    visible = canvas[..., 3] > 0
    assert np.abs(canvas[..., :3] - colour)[visible].max() <= 0.5 + 1e-3
    assert not canvas[~visible, :3].any()


def test_cutout_is_over_an_empty_canvas() -> None:
    fg, fa, _ = random_layers()
    empty = np.zeros((*fa.shape, 4), np.uint8)
    over(empty, fg, fa)
    np.testing.assert_array_equal(cutout(fg, fa), empty)


# --- solid colours ---------------------------------------------------------------


def test_opaque_colour_is_the_exact_integer_blend() -> None:
    rgb, alpha = ellipse_scene()
    out = compose(rgb, alpha, opts(background=Background("color", (10, 200, 90, 255))))
    assert out.pixels.shape == (H, W, 3) and not out.has_alpha
    bg = np.full_like(rgb, (10, 200, 90))
    np.testing.assert_array_equal(out.pixels, exact_over(rgb, alpha, bg))


def test_no_fringe_when_subject_and_background_match() -> None:
    # White over white stays white everywhere, soft edges included.
    alpha = soft_rect(W, H, (20, 10, 40, 30), sigma=2)
    rgb = np.full((H, W, 3), 255, np.uint8)
    out = compose(rgb, alpha, opts(background=Background("color", (255, 255, 255, 255))))
    assert out.pixels.min() == 255


def test_semi_transparent_colour_gives_rgba() -> None:
    rgb, alpha = ellipse_scene()
    out = compose(rgb, alpha, opts(background=Background("color", (0, 0, 255, 128))))
    assert out.pixels.shape == (H, W, 4)
    px = out.pixels.astype(np.int32)
    a = alpha.astype(np.int32)
    np.testing.assert_array_equal(
        px[alpha == 0], np.tile([0, 0, 255, 128], ((alpha == 0).sum(), 1))
    )
    np.testing.assert_array_equal(
        px[alpha == 255], np.c_[rgb[alpha == 255], np.full((alpha == 255).sum(), 255)]
    )
    # Soft edges: alpha = a + 128 (1 - a), colour = premultiplied mix / alpha.
    soft = (alpha > 0) & (alpha < 255)
    expected_a = a + 128 * (255 - a) / 255
    assert np.abs(px[..., 3] - expected_a)[soft].max() <= 1
    af, ab = a / 255, 128 / 255 * (1 - a / 255)
    blue = (rgb[..., 2] * af + 255 * ab) / (af + ab)
    assert np.abs(px[..., 2] - blue)[soft].max() <= 1


def test_transparent_colour_is_a_transparent_background() -> None:
    rgb, alpha = ellipse_scene()
    clear = compose(rgb, alpha, opts(background=Background("color", (255, 0, 0, 0))))
    np.testing.assert_array_equal(clear.pixels, compose(rgb, alpha, Options()).pixels)


# --- gradients ---------------------------------------------------------------------


def css_gradient(w: int, h: int, c0: tuple[int, ...], c1: tuple[int, ...], angle: float) -> Any:
    """Reference: CSS linear-gradient for opaque colours, float64, per pixel centre."""
    rad = math.radians(angle)
    dx, dy = math.sin(rad), -math.cos(rad)
    length = abs(w * dx) + abs(h * dy)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    t = ((xx - w / 2) * dx + (yy - h / 2) * dy) / length + 0.5
    t = np.clip(t, 0, 1)[..., np.newaxis]
    return np.asarray(c0[:3]) * (1 - t) + np.asarray(c1[:3]) * t


def gradient(
    angle: float,
    c0: tuple[int, int, int, int] = (255, 0, 0, 255),
    c1: tuple[int, int, int, int] = (0, 0, 255, 255),
) -> U8:
    rgb, _ = ellipse_scene()
    alpha = np.zeros((H, W), np.uint8)
    return compose(rgb, alpha, opts(background=Background("gradient", c0, c1, angle))).pixels


@pytest.mark.parametrize(
    ("angle", "start", "end"),
    [
        (0, (slice(-1, None), slice(None)), (slice(0, 1), slice(None))),  # bottom → top
        (90, (slice(None), slice(0, 1)), (slice(None), slice(-1, None))),  # left → right
        (180, (slice(0, 1), slice(None)), (slice(-1, None), slice(None))),  # top → bottom
        (270, (slice(None), slice(-1, None)), (slice(None), slice(0, 1))),  # right → left
    ],
)
def test_gradient_css_directions(angle: float, start: Any, end: Any) -> None:
    px = gradient(angle).astype(np.int32)
    assert px.shape == (H, W, 3)
    # The first stop is at the start edge, the second at the end edge (within the
    # half-pixel step of the ramp).
    step = 255 / (H if angle % 180 == 0 else W) + 1
    assert np.abs(px[start] - [255, 0, 0]).max() <= step
    assert np.abs(px[end] - [0, 0, 255]).max() <= step


def test_gradient_45_runs_corner_to_corner() -> None:
    px = gradient(45).astype(np.int32)
    # CSS sizes the line so the corners get the pure stop colours.
    assert np.abs(px[-1, 0] - [255, 0, 0]).max() <= 3  # bottom-left
    assert np.abs(px[0, -1] - [0, 0, 255]).max() <= 3  # top-right
    # Constant along the perpendicular (down-right), changing along the line (up-right).
    assert np.abs(px[10:40, 10:40] - px[11:41, 11:41]).max() <= 1
    assert px[40, 20, 2] < px[30, 30, 2] < px[20, 40, 2]


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 135, 180, 200, -45, 405, 333.3])
def test_gradient_matches_css_reference(angle: float) -> None:
    expected = css_gradient(W, H, (255, 0, 0), (0, 0, 255), angle)
    diff = np.abs(gradient(angle).astype(np.float64) - expected)
    assert diff.max() <= 1.0


def test_gradient_to_transparent_keeps_its_colour() -> None:
    px = gradient(0, (255, 0, 0, 255), (0, 255, 0, 0))
    assert px.shape == (H, W, 4)
    assert px[-1, :, 3].min() >= 250 and px[0, :, 3].max() <= 5
    # Premultiplied interpolation (as CSS): the fade is red fading out, not red → green.
    visible = px[..., 3] > 0
    assert px[visible, 0].min() == 255 and px[visible, 1].max() == 0


# --- blur ----------------------------------------------------------------------------


def halo_scene() -> tuple[U8, U8, tuple[int, int, int, int]]:
    w, h, box = 400, 300, (140, 100, 120, 100)
    alpha = soft_rect(w, h, box, sigma=1.5)
    bg = np.full((h, w, 3), 20, np.uint8)
    return photo(bg, (250, 250, 250), alpha), alpha, box


def test_blur_does_not_bleed_the_subject_into_the_background() -> None:
    rgb, alpha, (x, y, bw, bh) = halo_scene()
    out = compose(rgb, alpha, opts(background=Background("blur", blur=60))).pixels
    # A ring 6..12 px outside the subject, where alpha is 0.
    ring = np.zeros(alpha.shape, bool)
    ring[y - 12 : y + bh + 12, x - 12 : x + bw + 12] = True
    ring[y - 6 : y + bh + 6, x - 6 : x + bw + 6] = False
    assert not alpha[ring].any()
    assert out[ring].max() <= 22  # the background (20) stays dark
    # A naive blur of the photo lights the same ring up: the test can see a halo.
    sigma = blur_sigma(60, (400, 300))
    naive = cv2.GaussianBlur(rgb, (0, 0), sigma)
    assert naive[ring].max() > 50


def test_blur_blurs_the_original_background() -> None:
    rgb, alpha = ellipse_scene(192, 128)
    out = compose(rgb, alpha, opts(background=Background("blur", blur=80))).pixels
    far = alpha == 0
    # Stripes lose most of their contrast; the red ramp (low frequency) survives.
    assert np.std(out[far, 2].astype(float)) < 0.4 * np.std(rgb[far, 2].astype(float))
    assert out[64, 5, 0] < out[64, -5, 0] - 100
    # Intensity 0 is the original background.
    sharp = compose(rgb, alpha, opts(background=Background("blur", blur=0))).pixels
    np.testing.assert_array_equal(sharp[far], rgb[far])


def test_blur_sigma_is_relative_to_image_size() -> None:
    assert blur_sigma(50, (4000, 3000)) == pytest.approx(2 * blur_sigma(50, (2000, 1500)))
    assert blur_sigma(0, (4000, 3000)) == 0


def test_blur_when_the_subject_covers_everything() -> None:
    rgb, _ = ellipse_scene()
    alpha = np.full((H, W), 255, np.uint8)
    out = compose(rgb, alpha, opts(background=Background("blur", blur=50))).pixels
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("intensity", [0, 50])
def test_blur_with_margin_beyond_the_image(intensity: float) -> None:
    rgb, _ = ellipse_scene()
    rgb[..., 1] = 100
    alpha = soft_rect(W, H, (0, 20, 30, 30), sigma=0)  # touches the left edge
    layout = Layout(trim=True, margin=Length(10, "px"))
    bg = Background("blur", blur=intensity)
    out = compose(rgb, alpha, opts(background=bg, layout=layout))
    assert out.size == (50, 50) and out.pixels.shape == (50, 50, 3)
    assert out.subject_box == (10, 10, 30, 30)
    # Outside the image the background continues (edge replicated), it is not black.
    assert out.pixels[:, :10, 1].min() >= 90
    if intensity == 0:  # inside the image it is the original
        np.testing.assert_array_equal(out.pixels[:10, 10:], rgb[10:20, 0:40])


# --- image backgrounds --------------------------------------------------------------------


def png_bytes(pixels: U8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def four_stripes() -> U8:
    """200x50: red, green, blue, yellow vertical stripes, 50 px each."""
    out = np.zeros((50, 200, 3), np.uint8)
    for i, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]):
        out[:, i * 50 : (i + 1) * 50] = c
    return out


def image_bg(data: bytes, fit: str = "fill", **kwargs: Any) -> Composite:
    rgb, _ = ellipse_scene()
    alpha = np.zeros((H, W), np.uint8)
    bg = Background("image", image=data, fit=fit)  # type: ignore[arg-type]
    return compose(rgb, alpha, opts(background=bg, **kwargs))


def test_image_fill_covers_and_centres() -> None:
    out = image_bg(png_bytes(four_stripes()), "fill").pixels
    # Scaled ×1.28 to 256×64 and centre-cropped to 96 columns: green | blue.
    assert out.shape == (H, W, 3)
    assert np.abs(out[:, :40].astype(int) - [0, 255, 0]).max() <= 2
    assert np.abs(out[:, 56:].astype(int) - [0, 0, 255]).max() <= 2


def test_image_fit_letterboxes_with_transparency() -> None:
    out = image_bg(png_bytes(four_stripes()), "fit").pixels
    # Scaled ×0.48 to 96×24, centred: 20 transparent rows above and below.
    assert out.shape == (H, W, 4)
    assert not out[:20, :, 3].any() and not out[44:, :, 3].any()
    assert out[20:44, :, 3].min() == 255
    assert np.abs(out[32, 2, :3].astype(int) - [255, 0, 0]).max() <= 2
    assert np.abs(out[32, -2, :3].astype(int) - [255, 255, 0]).max() <= 2


def test_image_fit_with_the_canvas_aspect_is_opaque() -> None:
    same = np.zeros((32, 48, 3), np.uint8)
    same[:, 24:] = 255
    out = image_bg(png_bytes(same), "fit").pixels
    assert out.shape == (H, W, 3)
    assert out[:, :40].max() <= 2 and out[:, 56:].min() >= 253


def test_image_with_alpha_stays_transparent_and_clean() -> None:
    rgba = np.zeros((16, 24, 4), np.uint8)
    rgba[..., 0] = 255  # red, but only the left half is visible
    rgba[:, :12, 3] = 255
    out = image_bg(png_bytes(rgba), "fill").pixels
    assert out.shape == (H, W, 4)
    assert out[:, :40, 3].min() == 255 and out[:, 56:, 3].max() == 0
    # Premultiplied resizing: the visible pixels stay pure red up to the edge, and the
    # hidden ones carry no colour.
    visible = out[..., 3] > 0
    assert out[visible, 0].min() == 255
    assert not out[~visible].any()


def test_image_background_errors_name_the_background() -> None:
    with pytest.raises(CleancutError, match="background image"):
        image_bg(b"definitely not an image")


# --- drop shadow ---------------------------------------------------------------------


def shadow_scene(scale: int = 1) -> tuple[U8, U8]:
    w, h = 160 * scale, 120 * scale
    alpha = soft_rect(w, h, (50 * scale, 30 * scale, 60 * scale, 60 * scale), sigma=0)
    rgb = np.full((h, w, 3), 128, np.uint8)
    return rgb, alpha


def with_shadow(rgb: U8, alpha: U8, **shadow: Any) -> Composite:
    spec: dict[str, Any] = {
        "enabled": True,
        "opacity": 80.0,
        "softness": 5.0,
        "offset": (10.0, 10.0),
    }
    spec.update(shadow)
    white = Background("color", (255, 255, 255, 255))
    return compose(rgb, alpha, opts(background=white, shadow=Shadow(**spec)))


def test_shadow_falls_below_and_right_and_fades() -> None:
    rgb, alpha = shadow_scene()
    px = with_shadow(rgb, alpha).pixels[..., 0].astype(int)
    # Subject 60×60 at (50, 30): offset 6 px, sigma 3 px.
    assert px[60, 112] < 110 and px[92, 80] < 110  # right of and below the subject
    assert px[60, 47] >= 250 and px[27, 80] >= 250  # left of and above it: no shadow
    # Darkest next to the subject, lighter further out: a soft falloff, not a flat blob.
    row = px[60, 110:130]
    assert np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) >= 8
    assert row[0] < 80 and row[-1] >= 250
    # The profile is the subject's edge blurred by a Gaussian of sigma = 5 % of its
    # height (3 px), shifted 6 px, at 80 % opacity.
    x = np.arange(110, 130)
    cdf = np.array([0.5 * math.erfc((v + 0.5 - 116) / (3 * math.sqrt(2))) for v in x])
    assert np.abs(px[60, 110:130] - 255 * (1 - 0.8 * cdf)).max() <= 4


def test_shadow_opacity_zero_or_disabled_is_no_shadow() -> None:
    rgb, alpha = shadow_scene()
    plain = compose(rgb, alpha, opts(background=Background("color"))).pixels
    np.testing.assert_array_equal(with_shadow(rgb, alpha, opacity=0).pixels, plain)
    np.testing.assert_array_equal(with_shadow(rgb, alpha, enabled=False).pixels, plain)


def test_hard_shadow_is_the_offset_shape() -> None:
    rgb, alpha = shadow_scene()
    px = with_shadow(rgb, alpha, softness=0).pixels
    outside = alpha == 0
    assert set(np.unique(px[outside])) == {51, 255}
    shadow = np.zeros_like(alpha)
    shadow[36:96, 56:116] = 255
    np.testing.assert_array_equal(px[outside, 0] == 51, shadow[outside] > 0)


def test_shadow_scales_with_the_subject() -> None:
    # Softness and offset are relative to the subject: twice the resolution gives the
    # same picture at twice the size.
    rgb1, alpha1 = shadow_scene(1)
    rgb2, alpha2 = shadow_scene(2)
    small = with_shadow(rgb1, alpha1).pixels
    big = with_shadow(rgb2, alpha2).pixels
    reduced = cv2.resize(big, (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced.astype(int) - small.astype(int)).max() <= 12
    assert np.abs(reduced.astype(int) - small.astype(int)).mean() < 0.5


def test_shadow_over_transparency_is_semi_transparent_black() -> None:
    rgb, alpha = shadow_scene()
    spec = Shadow(enabled=True, opacity=80, softness=2, offset=(10, 10))
    out = compose(rgb, alpha, opts(shadow=spec))
    px = out.pixels
    assert px.shape == (120, 160, 4)
    np.testing.assert_array_equal(out.alpha, alpha)  # the subject alone, no shadow
    outside = alpha == 0
    assert not px[outside, :3].any()
    assert abs(int(px[outside, 3].max()) - 204) <= 3
    assert px[60, 112, 3] > 120 and px[60, 47, 3] == 0
    np.testing.assert_array_equal(px[alpha == 255, :3], rgb[alpha == 255])


def test_shadow_over_semi_transparent_colour() -> None:
    rgb, alpha = shadow_scene()
    spec = Shadow(enabled=True, opacity=100, softness=0, offset=(10, 10))
    bg = Background("color", (255, 255, 255, 128))
    px = compose(rgb, alpha, opts(shadow=spec, background=bg)).pixels
    # Opaque black shadow over half-transparent white: opaque black.
    np.testing.assert_array_equal(px[93, 100], [0, 0, 0, 255])
    np.testing.assert_array_equal(px[5, 5], [255, 255, 255, 128])


# --- layout ----------------------------------------------------------------------------


def layout_scene() -> tuple[U8, U8]:
    rgb = stripes()
    alpha = soft_rect(W, H, (20, 10, 30, 20), sigma=0)
    return rgb, alpha


def test_trim_is_tight() -> None:
    rgb, alpha = layout_scene()
    alpha[60, 90] = 5  # faint matte noise below the threshold: ignored
    out = compose(rgb, alpha, opts(layout=Layout(trim=True)))
    assert out.size == (30, 20) and out.subject_box == (0, 0, 30, 20)
    np.testing.assert_array_equal(out.pixels[..., :3], rgb[10:30, 20:50])
    np.testing.assert_array_equal(out.alpha, alpha[10:30, 20:50])


def test_trim_counts_visible_soft_edges() -> None:
    rgb, alpha = layout_scene()
    alpha[40, 60] = 30
    out = compose(rgb, alpha, opts(layout=Layout(trim=True)))
    assert out.size == (41, 31)


@pytest.mark.parametrize(
    ("margin", "size", "box"),
    [
        (Length(5, "px"), (40, 30), (5, 5, 30, 20)),
        (Length(10, "%"), (36, 24), (3, 2, 30, 20)),  # 10 % of width 30 and height 20
        (Length(0, "px"), (30, 20), (0, 0, 30, 20)),
    ],
)
def test_trim_margin(margin: Length, size: tuple[int, int], box: tuple[int, ...]) -> None:
    rgb, alpha = layout_scene()
    out = compose(rgb, alpha, opts(layout=Layout(trim=True, margin=margin)))
    assert out.size == size and out.subject_box == box
    assert box_of(out.alpha) == box


def test_margin_beyond_the_image_is_transparent() -> None:
    rgb = stripes()
    alpha = soft_rect(W, H, (0, 0, 30, 20), sigma=0)
    out = compose(rgb, alpha, opts(layout=Layout(trim=True, margin=Length(8, "px"))))
    assert out.size == (46, 36) and out.subject_box == (8, 8, 30, 20)
    assert not out.pixels[:8].any() and not out.pixels[:, :8].any()
    np.testing.assert_array_equal(out.pixels[8:28, 8:38, :3], rgb[0:20, 0:30])


def test_margin_ignored_without_trim() -> None:
    rgb, alpha = layout_scene()
    out = compose(rgb, alpha, opts(layout=Layout(margin=Length(50, "px"))))
    assert out.size == (W, H)


def test_scale_fills_a_fraction_of_the_canvas_centred() -> None:
    rgb, alpha = layout_scene()
    out = compose(rgb, alpha, opts(layout=Layout(scale=0.5)))
    # 30×20 grows by 0.5 × min(96/30, 64/20) = 1.6 to 48×32, centred.
    assert out.size == (W, H)
    assert out.subject_box == (24, 16, 48, 32)
    assert box_of(out.alpha > 128) == (24, 16, 48, 32)


@pytest.mark.parametrize(
    ("position", "box"),
    [((0.0, 0.0), (0, 0, 30, 20)), ((1.0, 1.0), (66, 44, 30, 20)), ((0.5, 0.0), (33, 0, 30, 20))],
)
def test_position_moves_within_the_free_space(
    position: tuple[float, float], box: tuple[int, ...]
) -> None:
    rgb, alpha = layout_scene()
    out = compose(rgb, alpha, opts(layout=Layout(position=position)))
    assert out.subject_box == box and box_of(out.alpha) == box
    x, y, w, h = box
    np.testing.assert_array_equal(out.pixels[y : y + h, x : x + w, :3], rgb[10:30, 20:50])


def test_trim_then_scale_adds_room() -> None:
    rgb, alpha = layout_scene()
    out = compose(rgb, alpha, opts(layout=Layout(trim=True, scale=0.5, position=(0, 1))))
    assert out.size == (30, 20) and out.subject_box == (0, 10, 15, 10)


def test_scaled_subject_has_no_dark_fringe() -> None:
    # White subject on a black photo: resizing must not pull black into the edge.
    alpha = soft_rect(W, H, (40, 24, 16, 16), sigma=1.0)
    rgb = np.repeat(np.where(alpha > 0, 255, 0).astype(np.uint8)[..., np.newaxis], 3, axis=2)
    for scale in (0.9, 0.2):
        out = compose(rgb, alpha, opts(layout=Layout(scale=scale)))
        visible = out.pixels[..., 3] > 0
        assert visible.any() and out.pixels[visible, :3].min() >= 250


def test_huge_margin_is_refused() -> None:
    rgb, alpha = layout_scene()
    layout = Layout(trim=True, margin=Length(100_000, "%"))
    with pytest.raises(InvalidOptions, match="canvas"):
        compose(rgb, alpha, opts(layout=layout, max_pixels=1_000_000))


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        opts(shadow=Shadow(enabled=True, opacity=-1)),
        opts(shadow=Shadow(opacity=101)),
        opts(shadow=Shadow(softness=-1)),
        opts(shadow=Shadow(softness=math.nan)),
        opts(shadow=Shadow(offset=(200, 0))),
        opts(shadow=Shadow(offset=(1, 2, 3))),  # type: ignore[arg-type]
        opts(background=Background("blur", blur=101)),
        opts(background=Background("plaid")),  # type: ignore[arg-type]
        opts(background=Background("color", (256, 0, 0, 255))),
        opts(background=Background("color", (1, 2, 3))),  # type: ignore[arg-type]
        opts(background=Background("color", (1.5, 2, 3, 255))),  # type: ignore[arg-type]
        opts(background=Background("gradient", color2=(0, 0, 0, -1))),
        opts(background=Background("gradient", angle=math.inf)),
        opts(background=Background("image")),
        opts(background=Background(fit="stretch")),  # type: ignore[arg-type]
        opts(layout=Layout(scale=0)),
        opts(layout=Layout(scale=-0.5)),
        opts(layout=Layout(scale=1.5)),
        opts(layout=Layout(scale=math.nan)),
        opts(layout=Layout(position=(1.5, 0))),
        opts(layout=Layout(position=(0.5,))),  # type: ignore[arg-type]
        opts(layout=Layout(margin=Length(-1, "px"))),
        opts(layout=Layout(margin=Length(1, "em"))),  # type: ignore[arg-type]
        opts(max_pixels=0),
    ],
)
def test_invalid_options(options: Options) -> None:
    rgb, alpha = layout_scene()
    with pytest.raises(InvalidOptions):
        compose(rgb, alpha, options)


@pytest.mark.parametrize(
    ("rgb", "alpha", "foreground"),
    [
        (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), None),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), None),
        (np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.uint8), None),
        (np.zeros((0, 4, 3), np.uint8), np.zeros((0, 4), np.uint8), None),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), None),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32), None),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((4, 5, 3), np.uint8)),
    ],
)
def test_invalid_arrays(rgb: Any, alpha: Any, foreground: Any) -> None:
    with pytest.raises(InvalidInput):
        compose(rgb, alpha, Options(), foreground=foreground)


# --- golden renders ------------------------------------------------------------------------


def golden_bg_image() -> bytes:
    yy, xx = np.mgrid[0:40, 0:50]
    checks = (((xx // 10) + (yy // 10)) % 2 * 150 + 60).astype(np.uint8)
    return png_bytes(np.dstack([checks, np.full_like(checks, 120), 255 - checks]))


GOLDEN: dict[str, Options] = {
    "compose_transparent_shadow": opts(shadow=Shadow(True, 60, 6, (4, 6))),
    "compose_gradient_135_shadow": opts(
        background=Background("gradient", (255, 230, 200, 255), (60, 90, 160, 255), 135),
        shadow=Shadow(True, 50, 4, (3, 4)),
    ),
    "compose_blur": opts(background=Background("blur", blur=100)),
    "compose_image_fit_moved": opts(
        background=Background("image", image=golden_bg_image(), fit="fit"),
        layout=Layout(scale=0.6, position=(0.2, 0.8)),
    ),
    "compose_trim_margin_colour": opts(
        background=Background("color", (30, 60, 90, 255)),
        layout=Layout(trim=True, margin=Length(15, "%")),
        shadow=Shadow(True, 70, 3, (5, 5)),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_renders(name: str) -> None:
    rgb, alpha = ellipse_scene()
    assert_image_close(compose(rgb, alpha, GOLDEN[name]).pixels, name)


@pytest.fixture
def golden_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(golden, "GOLDEN_DIR", tmp_path / "golden")
    monkeypatch.setattr(golden, "ARTIFACT_DIR", tmp_path / "artifacts")
    monkeypatch.delenv(golden.UPDATE_ENV, raising=False)
    return tmp_path / "golden", tmp_path / "artifacts"


def test_golden_helper_update_compare_and_artefacts(
    golden_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    golden_dir, artefacts = golden_dirs
    image = np.zeros((8, 12, 4), np.uint8)
    with pytest.raises(pytest.fail.Exception, match=golden.UPDATE_ENV):
        assert_image_close(image, "probe")  # no golden yet
    monkeypatch.setenv(golden.UPDATE_ENV, "1")
    assert_image_close(image, "probe")
    assert (golden_dir / "probe.png").is_file()
    monkeypatch.delenv(golden.UPDATE_ENV)
    near = image.copy()
    near[0, 0] = 2  # within max_diff
    assert_image_close(near, "probe")
    far = image.copy()
    far[:2] = 200
    with pytest.raises(pytest.fail.Exception) as info:
        assert_image_close(far, "probe")
    for kind in ("actual", "expected", "diff"):
        path = artefacts / f"probe.{kind}.png"
        assert path.is_file() and str(path) in str(info.value)
    assert "24 of 96 pixels" in str(info.value)
    assert_image_close(far, "probe", max_diff=200)
    assert_image_close(far, "probe", max_fraction=0.25)
    with pytest.raises(pytest.fail.Exception, match="shape"):
        assert_image_close(image[..., :3], "probe")


# --- speed ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_colour_and_gradient_on_12_megapixels_are_fast() -> None:
    h, w = 3000, 4000
    rgb = np.full((h, w, 3), 90, np.uint8)
    alpha = soft_rect(w, h, (1000, 600, 2000, 2000), sigma=0)
    alpha[590:600, 1000:3000] = 128  # a soft edge to blend
    for bg in (Background("color", (1, 2, 3, 255)), Background("gradient", angle=30)):
        compose(rgb, alpha, opts(background=bg))  # warm-up
        start = time.perf_counter()
        compose(rgb, alpha, opts(background=bg))
        # ~0.1 s measured on 2 cores; the bound only catches a fall back to slow paths.
        assert time.perf_counter() - start < 1.5
