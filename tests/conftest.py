from __future__ import annotations

import os
from pathlib import Path

import pytest

from cleancut.config import Settings
from cleancut.core.models import ModelRegistry, ModelSpec, spec_from_file
from cleancut.core.predict import ModelPool
from cleancut.core.runtimes import RuntimeConfig
from cleancut.core.weights import WeightsCache, default_cache_dir
from tests import tinymodels

pytest_plugins = ["tests.cli_support"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EVAL = SHARED / "eval"


def require_shared() -> Path:
    """The eval photos live beside the repo (licensed for evaluation only, never copied)."""
    if not EVAL.is_dir():
        pytest.skip(f"../shared/eval is absent ({EVAL}); CI always has it")
    return EVAL


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A test must never write into the user's ~/.config registry.
    monkeypatch.setenv("CLEANCUT_MODELS_FILE", str(tmp_path / "config" / "models.json"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> Path:
    return tinymodels.brightness_model(tiny_dir / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_spec(tiny_model: Path) -> ModelSpec:
    return spec_from_file("tiny", tiny_model, "isnet", input_size=(tinymodels.SIZE,) * 2)


@pytest.fixture(params=["openvino", "onnxruntime"])
def tiny_pool(request: pytest.FixtureRequest, tiny_spec: ModelSpec, tmp_path: Path) -> ModelPool:
    registry = ModelRegistry([tiny_spec])
    return ModelPool(
        registry, WeightsCache(tmp_path / "cache"), RuntimeConfig(runtime=request.param)
    )


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    """Settings for the real model; the weights cache is the user's (pulled once, reused)."""
    return Settings(cache_dir=Path(os.environ.get("CLEANCUT_CACHE_DIR") or default_cache_dir()))


@pytest.fixture(scope="session")
def real_pool(real_settings: Settings) -> ModelPool:
    return real_settings.model_pool()
