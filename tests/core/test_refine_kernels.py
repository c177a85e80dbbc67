"""The compiled refinement loops against the numpy formulation they replace."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from cleancut.core import refine_kernels as kernels

F32 = NDArray[np.float32]
RNG = np.random.default_rng(7)


def _unit(x: NDArray[np.uint8]) -> F32:
    return x.astype(np.float32) * np.float32(1 / 255)


def _dot(x: F32, y: F32) -> F32:
    return x[..., 0] * y[..., 0] + x[..., 1] * y[..., 1] + x[..., 2] * y[..., 2]


def _enlarged(coarse: F32, k: int, origin: tuple[int, int], size: tuple[int, int]) -> F32:
    """What the kernels sample: the coarse grid enlarged k times by OpenCV, cropped."""
    lh, lw = coarse.shape[:2]
    big = cv2.resize(coarse, (lw * k, lh * k), interpolation=cv2.INTER_LINEAR)
    (y, x), (h, w) = origin, size
    return np.asarray(big[y : y + h, x : x + w], np.float32)


# (tile size, its origin, scale): inside the grid, at its far corner, and unscaled
TILES = [((37, 53), (11, 7), 15), ((20, 30), (70, 60), 10), ((9, 12), (3, 4), 1)]


@pytest.mark.parametrize(("size", "origin", "k"), TILES)
def test_colour_band_matches_numpy(size: tuple[int, int], origin: tuple[int, int], k: int) -> None:
    h, w = size
    rgb = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    lh, lw = -(-(origin[0] + h) // k), -(-(origin[1] + w) // k)
    stats = RNG.random((lh, lw, 8), dtype=np.float32)
    stats[..., 6] *= 0.05
    stats[..., 7] = (RNG.random((lh, lw)) > 0.2).astype(np.float32)
    need = (RNG.random((h, w)) < 0.7).astype(np.uint8)
    mix, soft = kernels.colour_band(
        rgb, alpha, stats, k, origin, need, 16.0, 2.0, 0.1, (0.15, 0.85), 0.5
    )

    field = _enlarged(stats, k, origin, size)
    img, a = _unit(rgb), _unit(alpha)
    f, b, spread, have = field[..., :3], field[..., 3:6], field[..., 6], field[..., 7]
    d = f - b
    n2 = _dot(d, d)
    ac = np.clip(_dot(img - b, d) / (n2 + 1e-6), 0.0, 1.0)
    res = img - (b + ac[..., None] * d)
    on_line = np.exp(-_dot(res, res) / (n2 + 1e-6)) * (have > 0.5)
    sig2 = np.float32(0.01)
    trust = n2 / (n2 + sig2 + np.float32(16) * spread) * on_line
    gate = n2 / (n2 + sig2 + np.float32(2) * spread) * on_line
    want_mix = gate * ((ac > 0.15) & (ac < 0.85))
    blend = np.float32(0.5) * trust
    want_soft = blend * ac + (1.0 - blend) * a
    on = need == 1
    # A pixel whose ac sits on a MIXED bound may fall either side between formulations.
    near_bound = (np.abs(ac - 0.15) < 1e-4) | (np.abs(ac - 0.85) < 1e-4)
    np.testing.assert_allclose(mix[on & ~near_bound], want_mix[on & ~near_bound], atol=2e-5)
    np.testing.assert_allclose(soft[on], want_soft[on], atol=2e-5)
    assert not mix[~on].any()
    np.testing.assert_array_equal(soft[~on], a[~on])
    assert mix.dtype == soft.dtype == np.float32


@pytest.mark.parametrize(("size", "origin", "k"), TILES)
def test_snap_band_applies_the_sampled_model(
    size: tuple[int, int], origin: tuple[int, int], k: int
) -> None:
    h, w = size
    rgb = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lh, lw = -(-(origin[0] + h) // k), -(-(origin[1] + w) // k)
    model = (RNG.random((lh, lw, 4), dtype=np.float32) - 0.3) * 2
    where = RNG.random((h, w)) < 0.6
    got = kernels.snap_band(rgb, model, k, origin, where)

    up = _enlarged(model, k, origin, size)
    want = np.clip(_dot(up[..., :3], _unit(rgb)) + up[..., 3], 0.0, 1.0)
    np.testing.assert_allclose(got[where], want[where], atol=2e-5)
    assert not got[~where].any() and got.dtype == np.float32


@pytest.mark.parametrize("gated", [False, True])
def test_blend_band_writes_only_the_band(gated: bool) -> None:
    h, w = 40, 30
    alpha = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    soft, snap, zone = (RNG.random((h, w), dtype=np.float32) for _ in range(3))
    dist = (RNG.random((h, w)) * 12).astype(np.float32)
    sure = RNG.integers(0, 256, (h, w), dtype=np.uint8) if gated else None
    out = alpha.copy()
    kernels.blend_band(out, alpha, soft, snap, zone, dist, sure, 6, 2.5, (0.45, 0.75))

    q = zone * soft + (1 - zone) * snap
    fade = np.clip((np.float32(7.0) - dist) / np.float32(2.5), 0, 1)
    if sure is not None:
        fade *= np.clip((_unit(sure) - np.float32(0.45)) / np.float32(0.3), 0, 1)
    value = fade * q + (1 - fade) * _unit(alpha)
    want = np.where(dist <= 6, np.clip(value * 255 + 0.5, 0, 255).astype(np.uint8), alpha)
    assert np.abs(out.astype(int) - want).max() <= 1
    assert (out != want).mean() < 0.01
    np.testing.assert_array_equal(out[dist > 6], alpha[dist > 6])


def _sums_by_block(x: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """Sums over the k×k blocks of ``x`` (H×W×C), partial blocks at the far edges too."""
    h, w = x.shape[:2]
    rows = np.add.reduceat(x, np.arange(0, h, k), axis=0)
    return np.asarray(np.add.reduceat(rows, np.arange(0, w, k), axis=1), np.int64)


@pytest.mark.parametrize(
    ("h", "w", "k", "rows"),
    [
        (45, 60, 15, None),
        (47, 61, 15, None),
        (10, 9, 1, None),
        (33, 20, 4, None),
        (101, 97, 16, (2, 5)),  # a strip, not the whole image
        (46, 61, 15, (3, 4)),  # the last block row, one pixel high
    ],
)
def test_block_sums_match_a_plain_sum(h: int, w: int, k: int, rows: tuple[int, int] | None) -> None:
    rgb = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = RNG.choice(np.array([0, 10, 25, 26, 128, 229, 230, 255], np.uint8), (h, w))
    band = RNG.random((h, w)) < 0.3
    lh, lw = -(-h // k), -(-w // k)
    ly0, ly1 = rows or (0, lh)
    fg, bg = np.zeros((lh, lw, 5), np.float32), np.zeros((lh, lw, 5), np.float32)
    kernels.block_sums(rgb, alpha, band, k, 230, 25, fg, bg, (ly0, ly1))
    scale = np.float32(1) / np.float32(k * k)  # the kernel's constants, in its order
    for out, weight in ((fg, ~band & (alpha >= 230)), (bg, ~band & (alpha <= 25))):
        i = rgb.astype(np.float64) / 255 * weight[..., None]
        planes = np.dstack([i, (i * i).sum(axis=2), weight.astype(np.float64)])
        padded = np.zeros((lh * k, lw * k, 5))
        padded[:h, :w] = planes
        want = padded.reshape(lh, k, lw, k, 5).sum(axis=(1, 3)) / (k * k)
        np.testing.assert_allclose(out[ly0:ly1], want[ly0:ly1], rtol=1e-5, atol=1e-7)
        # Exact integer sums, scaled once in float32: equal to the bit.
        ints = rgb.astype(np.int64) * weight[..., None]
        sums = _sums_by_block(np.dstack([ints, (ints * ints).sum(axis=2), weight]), k)
        c = scale * np.float32(1 / 255)
        exact = sums.astype(np.float32) * np.array([c, c, c, c * np.float32(1 / 255), scale])
        np.testing.assert_array_equal(out[ly0:ly1], exact[ly0:ly1])
        assert not out[:ly0].any() and not out[ly1:].any()


@pytest.mark.parametrize(("h", "w", "k"), [(1300, 5, 1200), (11100, 2, 11009)])
def test_block_sums_of_huge_blocks_do_not_overflow(h: int, w: int, k: int) -> None:
    # White sure foreground over more rows than 32-bit column sums can hold
    # (k·255·2¹⁶ and, for the second, k·3·255² exceed 2³¹).
    rgb = np.full((h, w, 3), 255, np.uint8)
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, 0] = 0
    band = np.zeros((h, w), bool)
    lh, lw = -(-h // k), -(-w // k)
    fg, bg = np.zeros((lh, lw, 5), np.float32), np.zeros((lh, lw, 5), np.float32)
    kernels.block_sums(rgb, alpha, band, k, 230, 25, fg, bg, (0, lh))
    scale = np.float32(1) / np.float32(k * k)
    c, cq = scale * np.float32(1 / 255), scale * np.float32(1 / 255) * np.float32(1 / 255)
    for out, cols in ((fg, w - 1), (bg, 1)):
        n = np.array([k * cols, (h - k) * cols], np.int64)[:, None]
        np.testing.assert_array_equal(out[..., 0], n.astype(np.float32) * 255 * c)
        np.testing.assert_array_equal(out[..., 3], (n * 3 * 255**2).astype(np.float32) * cq)
        np.testing.assert_array_equal(out[..., 4], n.astype(np.float32) * scale)


@pytest.mark.parametrize("k", [1, 2, 3, 16])
def test_block_any_and_sides(k: int) -> None:
    h, w = 50, 41
    mask = RNG.random((h, w)) < 0.02
    lh, lw = -(-h // k), -(-w // k)
    padded = np.zeros((lh * k, lw * k), bool)
    padded[:h, :w] = mask
    np.testing.assert_array_equal(
        kernels.block_any(mask, k), padded.reshape(lh, k, lw, k).any(axis=(1, 3))
    )
    alpha = np.where(mask, 200, 40).astype(np.uint8)
    sides = kernels.block_sides(alpha, k, 128)
    above = np.zeros((lh * k, lw * k), bool)
    below = np.zeros((lh * k, lw * k), bool)
    above[:h, :w], below[:h, :w] = mask, ~mask
    want = (
        above.reshape(lh, k, lw, k).any(axis=(1, 3)) * 1
        + below.reshape(lh, k, lw, k).any(axis=(1, 3)) * 2
    )
    np.testing.assert_array_equal(sides, want)


def test_settle_moments_is_the_numpy_formulation() -> None:
    sums = RNG.random((31, 23, 5)).astype(np.float32)
    sums[..., 4] = np.where(RNG.random((31, 23)) < 0.3, 0.0, sums[..., 4])  # no samples
    sums[0, 0, 4] = np.float32(0.05)  # exactly at the threshold: not enough
    mean = np.full((31, 23, 3), -1.0, np.float32)
    var = np.full((31, 23), -1.0, np.float32)
    have = RNG.random((31, 23)) < 0.2  # settled at an earlier step: left alone
    before = have.copy()
    kernels.settle_moments(sums, 0.05, mean, var, have)

    den = sums[..., 4]
    new = ~before & (den > 0.05)
    safe = np.maximum(den, 1e-6)[..., None]
    m = sums[..., :3] / safe
    v = np.maximum(sums[..., 3] / safe[..., 0] - _dot(m, m), 0.0)
    np.testing.assert_array_equal(have, before | new)
    np.testing.assert_array_equal(mean[new], m[new])
    np.testing.assert_array_equal(var[new], v[new])
    assert (mean[~new] == -1.0).all() and (var[~new] == -1.0).all()
    assert not new[0, 0]


def _blobs(h: int, w: int, seed: int) -> NDArray[np.uint8]:
    noise = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    return (cv2.GaussianBlur(noise, (0, 0), 5) > 0.5).astype(np.uint8)


@pytest.mark.parametrize(("h", "w", "seed"), [(90, 130, 0), (61, 47, 1), (1, 30, 2), (40, 1, 3)])
def test_side_distance_is_opencvs_chamfer_to_the_other_side(h: int, w: int, seed: int) -> None:
    fg = _blobs(h, w, seed)
    fg[h // 2, : w // 2] = 1  # at least one pixel of each class, also in thin images
    fg[h // 2, w // 2 :] = 0
    want = np.maximum(
        cv2.distanceTransform(fg, cv2.DIST_L2, 3), cv2.distanceTransform(1 - fg, cv2.DIST_L2, 3)
    )
    core = (h // 4, h - h // 4 or 1, w // 5, w - w // 5 or 1)
    got = kernels.side_distance(fg.astype(bool), 9.0, core)
    y0, y1, x0, x1 = core
    assert got.dtype == np.float32 and got.shape == (y1 - y0, x1 - x0)
    np.testing.assert_allclose(got, np.minimum(want, 9.0)[y0:y1, x0:x1], atol=1e-5)


def _serial_chamfer(fg: NDArray[np.bool_]) -> F32:
    """The two-class chamfer as one plain serial scan per row, in float32."""
    step, diag = np.float32(0.955), np.float32(1.3693)
    h, w = fg.shape
    cls = np.full((h + 2, w + 2), 2, np.uint8)
    cls[1:-1, 1:-1] = fg
    d = np.full((h + 2, w + 2), np.float32(1e9), np.float32)
    for down in (True, False):
        for y in range(1, h + 1) if down else range(h, 0, -1):
            ny = y - 1 if down else y + 1
            for x in range(1, w + 1):
                c = cls[y, x]
                cands = [
                    diag if cls[ny, x - 1] ^ c == 1 else d[ny, x - 1] + diag,
                    step if cls[ny, x] ^ c == 1 else d[ny, x] + step,
                    diag if cls[ny, x + 1] ^ c == 1 else d[ny, x + 1] + diag,
                ]
                d[y, x] = min(min(min(cands[0], cands[1]), cands[2]), d[y, x])
            for x in range(1, w + 1) if down else range(w, 0, -1):
                nx = x - 1 if down else x + 1
                v = step if cls[y, nx] ^ cls[y, x] == 1 else d[y, nx] + step
                d[y, x] = min(v, d[y, x])
    return d[1:-1, 1:-1]


@pytest.mark.parametrize(("h", "w", "seed"), [(23, 61, 4), (9, 5, 5), (30, 3, 6), (2, 40, 7)])
def test_side_distance_chunked_scans_equal_one_serial_scan(h: int, w: int, seed: int) -> None:
    # The row scans run in interleaved chunks; every value must be exactly the serial one.
    rng = np.random.default_rng(seed)
    fg = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    fg[0, 0], fg[-1, -1] = True, False  # both classes, so every distance is finite
    np.testing.assert_array_equal(
        kernels.side_distance(fg, 1e6, (0, h, 0, w)), _serial_chamfer(fg).astype(np.float32)
    )


def test_side_distance_of_one_class_is_the_cap() -> None:
    got = kernels.side_distance(np.ones((20, 30), bool), 7.5, (0, 20, 0, 30))
    np.testing.assert_array_equal(got, np.full((20, 30), 7.5, np.float32))


@pytest.mark.parametrize(("h", "w", "k"), [(45, 60, 3), (47, 61, 4), (9, 10, 1), (5, 7, 3)])
def test_block_means_at_the_chosen_blocks(h: int, w: int, k: int) -> None:
    rgb = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lh, lw = -(-h // k), -(-w // k)
    where = RNG.random((lh, lw)) < 0.5
    got = kernels.block_means_at(rgb, k, where)
    binary = kernels.block_means_at(rgb[..., :1], k, where, cut=128)
    for ly, lx in np.ndindex(lh, lw):
        block = rgb[ly * k : (ly + 1) * k, lx * k : (lx + 1) * k].reshape(-1, 3)
        if not where[ly, lx]:
            assert not got[ly, lx].any() and not binary[ly, lx].any()
            continue
        mean = block.astype(np.float64).mean(axis=0)
        assert np.abs(got[ly, lx] - mean).max() <= 0.5 + 1e-9
        hard = np.where(block[:, 0] >= 128, 255.0, 0.0).mean()
        assert abs(int(binary[ly, lx, 0]) - hard) <= 0.5 + 1e-9
