"""Shared helpers and fixtures for the CLI tests (registered as a plugin by conftest)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from cleancut.cli import main
from tests import tinymodels

BOX = (50, 40, 150, 110)  # the bright subject of tinymodels.square_image(), x0, y0, x1, y1
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NO_NPM = "cleancut-tests-no-such-npm"
HEAVY_MODULES = ("numpy", "onnx", "onnxruntime", "openvino", "cv2", "PIL", "pydantic")


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture(scope="session")
def scratch_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder for the tiny-model tests (OpenVINO writes compiled models there)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def hermetic_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, scratch_cache: Path
) -> None:
    """Only the settings a test sets itself apply; the real cache is used by model tests only."""
    keep = {"CLEANCUT_MODELS_FILE", "CLEANCUT_CACHE_DIR"}
    for key in [k for k in os.environ if k.startswith("CLEANCUT_") and k not in keep]:
        monkeypatch.delenv(key)
    if request.node.get_closest_marker("model") is None:
        monkeypatch.setenv("CLEANCUT_CACHE_DIR", str(scratch_cache))
        # Whatever goes wrong, these tests never download anything.
        monkeypatch.setenv("CLEANCUT_NPM", NO_NPM)


def cli(*args: str | Path, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def ok(*args: str | Path, input: bytes | None = None) -> Result:
    result = cli(*args, input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def fails(*args: str | Path, code: int = 1, input: bytes | None = None) -> Result:
    """The command failed with ``code`` through a clean exit, never an unhandled exception."""
    result = cli(*args, input=input)
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def run_module(
    *args: str | Path, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cleancut.cli", *map(str, args)],
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def write_square(path: Path, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tinymodels.square_image()).save(path, format=fmt)
    return path


def square_bytes(fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(tinymodels.square_image()).save(buf, format=fmt)
    return buf.getvalue()


def inside(a: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = BOX
    return a[y0 + 8 : y1 - 8, x0 + 8 : x1 - 8]


def outside(a: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = BOX
    keep = np.ones(a.shape[:2], dtype=bool)
    keep[y0 - 8 : y1 + 8, x0 - 8 : x1 + 8] = False
    return a[keep]


def load(source: Path | bytes) -> Image.Image:
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        img.load()
        return img


def assert_cutout(source: Path | bytes, *, colour_tolerance: int = 2) -> None:
    """An RGBA PNG of the square: opaque subject in its own colours, clear background.
    Inputs saved lossily (JPEG, WebP) shift the colours a little: raise the tolerance."""
    img = load(source)
    assert img.format == "PNG"
    assert img.mode == "RGBA"
    assert img.size == (200, 150)
    alpha = np.asarray(img.getchannel("A"))
    assert inside(alpha).min() >= 250
    assert outside(alpha).max() <= 5
    rgb = np.asarray(img.convert("RGB"))
    assert np.abs(inside(rgb).astype(int) - (235, 230, 225)).max() <= colour_tolerance


@pytest.fixture
def tiny(tiny_model: Path) -> str:
    """The tiny model, registered the way a user would."""
    result = ok("models", "add", "tiny", tiny_model, "--preset", "isnet", "--input-size", "64")
    assert "registered tiny" in result.output
    return "tiny"


@pytest.fixture
def square(tmp_path: Path) -> Path:
    return write_square(tmp_path / "square.png")


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
