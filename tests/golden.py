"""Golden-image assertions with a tolerance, dumping artefacts on failure.

``assert_image_close(actual, "name")`` compares ``actual`` with ``tests/golden/name.png``.
A pixel differs when any channel is off by more than ``max_diff``; the check fails when
more than ``max_fraction`` of the pixels differ (or the shapes differ). On failure the
actual, expected and an amplified difference image are written to
``test-artifacts/golden/`` and the message gives their paths and the statistics.

Set ``CLEANCUT_UPDATE_GOLDEN=1`` to (re)write the golden files instead; review them
before committing. Keep goldens small (about 96×64) and made from synthetic inputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"
ARTIFACT_DIR = REPO / "test-artifacts" / "golden"
UPDATE_ENV = "CLEANCUT_UPDATE_GOLDEN"
_MODES = {2: "L", 3: "RGB", 4: "RGBA"}


def _channels(image: NDArray[np.uint8]) -> int:
    return 2 if image.ndim == 2 else int(image.shape[2])


def _save(image: NDArray[np.uint8], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image, _MODES[_channels(image)]).save(path, optimize=True)


def _load(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.uint8).copy()


def _check_array(actual: NDArray[np.uint8], name: str) -> None:
    if not isinstance(actual, np.ndarray) or actual.dtype != np.uint8:
        pytest.fail(f"golden {name!r}: expected a uint8 array, got {type(actual).__name__}")
    ok = actual.ndim == 2 or (actual.ndim == 3 and actual.shape[2] in (3, 4))
    if not ok:
        pytest.fail(f"golden {name!r}: expected HxW, HxWx3 or HxWx4, got shape {actual.shape}")


def assert_image_close(
    actual: NDArray[np.uint8], name: str, *, max_diff: int = 2, max_fraction: float = 0.001
) -> None:
    """Fail unless ``actual`` matches ``tests/golden/<name>.png`` within the tolerance."""
    _check_array(actual, name)
    golden = GOLDEN_DIR / f"{name}.png"
    if os.environ.get(UPDATE_ENV) == "1":
        _save(np.ascontiguousarray(actual), golden)
        return
    if not golden.is_file():
        path = ARTIFACT_DIR / f"{name}.actual.png"
        _save(np.ascontiguousarray(actual), path)
        pytest.fail(
            f"golden {name!r}: {golden} does not exist; actual written to {path}. "
            f"Run with {UPDATE_ENV}=1 to create it, then review it."
        )
    expected = _load(golden)
    if expected.shape != actual.shape:
        failure = f"shape {actual.shape} != expected {expected.shape}"
        diff = None
    else:
        delta = np.abs(actual.astype(np.int16) - expected.astype(np.int16)).astype(np.uint8)
        per_pixel = delta if delta.ndim == 2 else delta.max(axis=2)
        bad = int(np.count_nonzero(per_pixel > max_diff))
        fraction = bad / per_pixel.size
        if fraction <= max_fraction:
            return
        failure = (
            f"{bad} of {per_pixel.size} pixels ({fraction:.3%}) differ by more than "
            f"{max_diff} (allowed {max_fraction:.3%}); max difference {int(per_pixel.max())}, "
            f"mean {float(per_pixel.mean()):.3f}"
        )
        diff = np.clip(per_pixel.astype(np.uint16) * 8, 0, 255).astype(np.uint8)
    paths = {
        "actual": ARTIFACT_DIR / f"{name}.actual.png",
        "expected": ARTIFACT_DIR / f"{name}.expected.png",
    }
    _save(np.ascontiguousarray(actual), paths["actual"])
    _save(expected, paths["expected"])
    if diff is not None:
        paths["diff"] = ARTIFACT_DIR / f"{name}.diff.png"
        _save(diff, paths["diff"])
    listing = ", ".join(f"{kind}: {path}" for kind, path in paths.items())
    pytest.fail(f"golden {name!r} mismatch: {failure}. Artefacts: {listing}")
