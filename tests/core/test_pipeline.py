"""The orchestrator on tiny generated models: every source type, straight alpha, holes,
source transparency, progress stages and encoding."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cleancut
from cleancut.core import pipeline
from cleancut.core.predict import ModelPool
from cleancut.core.types import OutputSpec
from cleancut.errors import InvalidOptions
from tests import tinymodels

BOX = (50, 40, 150, 110)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _check_square(alpha: np.ndarray) -> None:
    x0, y0, x1, y1 = BOX
    assert alpha.shape == (150, 200)
    assert alpha[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10].min() >= 250
    assert alpha[: y0 - 10].max() <= 5 and alpha[:, x1 + 10 :].max() <= 5


@pytest.mark.parametrize("kind", ["bytes", "path", "file", "pil", "ndarray"])
def test_every_source_kind(tiny_pool: ModelPool, tmp_path: Path, kind: str) -> None:
    img = tinymodels.square_image(box=BOX)
    data = _png(img)
    path = tmp_path / "in.png"
    path.write_bytes(data)
    source = {
        "bytes": data,
        "path": path,
        "file": io.BytesIO(data),
        "pil": Image.fromarray(img),
        "ndarray": img,
    }[kind]
    result = cleancut.remove(source, model="tiny", pool=tiny_pool)
    _check_square(result.alpha)
    assert result.size == (200, 150) and result.model == "tiny"


def test_cutout_has_straight_alpha_and_no_hidden_background(tiny_pool: ModelPool) -> None:
    img = tinymodels.square_image(box=BOX)
    rgba = cleancut.remove(img, model="tiny", pool=tiny_pool).rgba()
    alpha = rgba[..., 3]
    soft = (alpha > 0) & (alpha < 255)
    assert soft.any()
    # Straight alpha: colour is the original, never darkened by alpha.
    np.testing.assert_array_equal(rgba[soft][:, :3], img[soft])
    assert not rgba[alpha == 0][:, :3].any()


def test_holes_stay_transparent(tiny_pool: ModelPool) -> None:
    img = np.full((200, 200, 3), 20, np.uint8)
    img[30:170, 30:170] = 240
    img[80:120, 80:120] = 20  # the hole of a frame
    alpha = cleancut.remove(img, model="tiny", pool=tiny_pool).alpha
    assert alpha[100, 100] <= 5 and alpha[50, 50] >= 250


def test_source_alpha_is_respected(tiny_pool: ModelPool) -> None:
    rgba = np.zeros((150, 200, 4), np.uint8)
    rgba[..., :3] = tinymodels.square_image(box=BOX)
    rgba[..., 3] = 255
    rgba[:, :100, 3] = 0  # the left half was already cut away
    rgba[:, :100, :3] = 255  # ... and holds bright junk colour the model must not see
    alpha = cleancut.remove(_png(rgba), model="tiny", pool=tiny_pool).alpha
    assert alpha[:, :100].max() == 0
    assert alpha[75, 120] >= 250


def test_progress_reports_every_stage_in_order(tiny_pool: ModelPool) -> None:
    seen: list[tuple[str, float]] = []
    result = cleancut.remove(
        tinymodels.square_image(),
        model="tiny",
        pool=tiny_pool,
        progress=lambda s, f: seen.append((s, f)),
    )
    result.encode(progress=lambda s, f: seen.append((s, f)))
    stages = [s for s, _ in seen]
    assert stages == [s for s in ("decode", "inference", "refine", "encode") for _ in (0, 1)]
    assert [f for _, f in seen] == [0.0, 1.0] * 4
    assert result.timings.inference > 0


def test_encode_modes_and_formats(tiny_pool: ModelPool, tmp_path: Path) -> None:
    result = cleancut.remove(
        tinymodels.square_image(box=BOX),
        model="tiny",
        pool=tiny_pool,
        mode="mask",
        mask="binary",
    )
    mask = Image.open(io.BytesIO(result.encode()))
    assert mask.mode == "L" and set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}

    cut = Image.open(io.BytesIO(result.encode(OutputSpec(format="webp"))))
    assert (cut.format, cut.mode) == ("WEBP", "RGBA")
    np.testing.assert_array_equal(np.asarray(cut)[..., 3], result.alpha)  # lossless

    jpeg = Image.open(
        io.BytesIO(result.encode(format="jpeg", mode="cutout", flatten_color=(0, 0, 255)))
    )
    assert (jpeg.format, jpeg.mode) == ("JPEG", "RGB")
    r, g, b = np.asarray(jpeg)[5, 5].tolist()
    assert b > 200 and r < 40 and g < 40  # flattened onto the requested colour

    saved = result.save(tmp_path / "out.webp", mode="cutout")
    with Image.open(saved) as reread:
        assert reread.format == "WEBP"
    with pytest.raises(InvalidOptions):
        result.encode(nonsense=True)


def test_unknown_options_are_rejected(tiny_pool: ModelPool) -> None:
    with pytest.raises(InvalidOptions, match="unknown option"):
        cleancut.remove(tinymodels.square_image(), model="tiny", pool=tiny_pool, colour="red")


def test_warm_up_compiles_the_resize_refinement_and_cut_out_loops() -> None:
    from cleancut.core import compose_kernels, guided_kernels, refine_kernels, resample

    pipeline.warm_up()
    pipeline.warm_up()  # idempotent, and cheap the second time
    for loop in (
        refine_kernels._colour_band,
        refine_kernels._snap_band,
        refine_kernels._side_distance,
        refine_kernels._block_means_at,
        refine_kernels._blend_band,
        refine_kernels._block_sums,
        refine_kernels._settle_moments,
        refine_kernels._block_sides,
        compose_kernels._cutout,
        guided_kernels._coefficients,
        resample._normalise,
    ):
        assert loop.signatures, loop
    assert len(resample._rows.signatures) >= 2  # bytes, then floats
