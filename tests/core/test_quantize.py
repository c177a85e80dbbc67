"""8-bit graphs on a tiny generated two-convolution model: built from the shipped
calibration photos, cached under a digest, chosen by the precision setting."""

from __future__ import annotations

import platform
import shutil
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from cleancut.core import quantize, runtimes
from cleancut.core.models import Int8Recipe, ModelRegistry, ModelSpec, spec_from_file
from cleancut.core.predict import ModelPool, load_session
from cleancut.core.runtimes import RuntimeConfig, open_session, resolve_precision
from cleancut.core.weights import WeightsCache, sha256_file
from cleancut.errors import InvalidOptions, ModelError, RuntimeUnavailable
from tests import tinymodels


def conv_spec(folder: Path, recipe: Int8Recipe | None = None) -> ModelSpec:
    path = folder / "conv.onnx"
    if not path.exists():
        tinymodels.conv_brightness_model(path)
    spec = spec_from_file("conv", path, "isnet", input_size=(tinymodels.SIZE,) * 2)
    return replace(spec, int8=recipe or Int8Recipe())


def ramp() -> np.ndarray:
    """Brightness rising from left to right: every output level from ~0 to ~1 appears."""
    row = np.linspace(112, 144, 64).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (64, 64, 3)))


def fake_quantize_count(ir: Path) -> int:
    ops = Counter(op.get_type_name() for op in ov.Core().read_model(str(ir)).get_ops())
    return ops["FakeQuantize"]


def test_int8_session_runs_a_quantised_graph_close_to_the_float_one(tmp_path: Path) -> None:
    spec = conv_spec(tmp_path)
    weights = WeightsCache(tmp_path / "cache")
    seg = ModelPool(ModelRegistry([spec]), weights, RuntimeConfig()).get("conv")
    assert seg.runtime.startswith("openvino/CPU/int8+")
    ir = quantize.cached(weights, spec)
    assert ir is not None and ir.with_suffix(".bin").is_file()
    # Both convolutions read quantised inputs (and the graph input itself).
    assert fake_quantize_count(ir) >= 2
    img = ramp()
    x = seg.preprocess(img)
    expected = 1 / (1 + np.exp(-tinymodels.GAIN * x.mean(axis=1)[0]))
    got = seg.predict(img)
    assert float(got.min()) < 0.1 and float(got.max()) > 0.9  # the ramp spans the sigmoid
    np.testing.assert_allclose(got, expected, atol=0.04)
    float_seg = ModelPool(ModelRegistry([spec]), weights, RuntimeConfig(precision="float"))
    assert "int8" not in float_seg.get("conv").runtime


def test_graph_is_built_once_then_reused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = conv_spec(tmp_path)
    weights = WeightsCache(tmp_path / "cache")
    logs: list[str] = []
    first = quantize.ensure(weights, spec, logs.append)
    # NNCF's own progress bars and logging stay off a server's output; the log says it.
    assert capsys.readouterr() == ("", "")
    mtime = first.stat().st_mtime_ns
    assert sum("building" in line for line in logs) == 1
    assert quantize.ensure(weights, spec, logs.append) == first
    assert first.stat().st_mtime_ns == mtime
    assert sum("building" in line for line in logs) == 1
    # `models pull --force` rebuilds in place.
    assert quantize.ensure(weights, spec, logs.append, rebuild=True) == first
    assert sum("building" in line for line in logs) == 2
    assert len(list(weights.models_dir.glob("conv.int8-*"))) == 2  # the .xml and its .bin


def test_concurrent_first_uses_build_one_graph(tmp_path: Path) -> None:
    spec = conv_spec(tmp_path)
    weights = WeightsCache(tmp_path / "cache")
    logs: list[str] = []
    paths: list[Path] = []
    threads = [
        threading.Thread(target=lambda: paths.append(quantize.ensure(weights, spec, logs.append)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 1 and len(paths) == 3
    assert sum("building" in line for line in logs) == 1


def test_a_new_recipe_builds_a_new_graph_and_drops_the_stale_one(tmp_path: Path) -> None:
    weights = WeightsCache(tmp_path / "cache")
    everything = quantize.ensure(weights, conv_spec(tmp_path))
    head_float = conv_spec(tmp_path, Int8Recipe(keep_float=("/head/.*",)))
    partial = quantize.ensure(weights, head_float)
    assert partial != everything
    assert not everything.exists() and not everything.with_suffix(".bin").exists()
    # The head convolution keeps float inputs: fewer quantisers than the full graph has.
    partial_count = fake_quantize_count(partial)
    again = quantize.ensure(weights, conv_spec(tmp_path))
    assert again == everything and not partial.exists()
    assert partial_count < fake_quantize_count(again)


def test_a_pattern_that_matches_no_layer_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    spec = conv_spec(tmp_path, Int8Recipe(keep_float=("/nowhere/.*",)))
    weights = WeightsCache(tmp_path / "cache")
    with pytest.raises(ModelError, match="8-bit graph"):
        quantize.ensure(weights, spec)
    assert not list(weights.models_dir.glob("conv.int8-*"))
    assert not [p for p in weights.models_dir.iterdir() if p.is_dir()]  # no temp folder left


def test_digest_follows_weights_recipe_and_photos(tmp_path: Path) -> None:
    spec = conv_spec(tmp_path)
    sha = sha256_file(tmp_path / "conv.onnx")
    base = quantize.digest(spec, sha)
    assert quantize.digest(spec, sha) == base
    assert quantize.digest(spec, "0" * 64) != base
    assert quantize.digest(replace(spec, int8=Int8Recipe(preset="performance")), sha) != base
    photos = tmp_path / "photos"
    shutil.copytree(quantize.CALIBRATION_DIR, photos)
    assert quantize.digest(spec, sha, photos) == base
    first = sorted(photos.glob("*.jpg"))[0]
    first.write_bytes(first.read_bytes() + b"\0")
    assert quantize.digest(spec, sha, photos) != base


def test_calibration_inputs_are_three_views_of_every_shipped_photo(tmp_path: Path) -> None:
    spec = conv_spec(tmp_path)
    photos = quantize.calibration_photos()
    assert len(photos) >= 7
    inputs = quantize.calibration_inputs(spec)
    assert len(inputs) == 3 * len(photos)
    assert all(x.shape == (1, 3, 64, 64) and x.dtype == np.float32 for x in inputs)
    # Normalised as the model expects: (x - 128) / 256 of 8-bit pixels.
    assert all(float(x.min()) >= -0.51 and float(x.max()) <= 0.5 for x in inputs)
    with pytest.raises(ModelError, match="no calibration photos"):
        quantize.calibration_inputs(spec, tmp_path / "empty")


def test_precision_resolution(tmp_path: Path) -> None:
    with_recipe = conv_spec(tmp_path)
    without = replace(with_recipe, int8=None)
    ov_cfg, ort_cfg = RuntimeConfig(runtime="openvino"), RuntimeConfig(runtime="onnxruntime")
    assert resolve_precision(with_recipe, ov_cfg) == "int8"
    assert resolve_precision(with_recipe, RuntimeConfig()) == "int8"  # auto runtime: OpenVINO
    assert resolve_precision(with_recipe, ort_cfg) == "float"
    assert resolve_precision(without, ov_cfg) == "float"
    for precision in ("float", "f32"):
        assert resolve_precision(with_recipe, replace(ov_cfg, precision=precision)) == precision
    with pytest.raises(RuntimeUnavailable, match="OpenVINO only"):
        resolve_precision(with_recipe, replace(ort_cfg, precision="int8"))
    with pytest.raises(RuntimeUnavailable, match="no 8-bit recipe"):
        resolve_precision(without, replace(ov_cfg, precision="int8"))
    # Asking for int8 where it cannot run fails at load time too, never a float run.
    weights = WeightsCache(tmp_path / "cache")
    with pytest.raises(RuntimeUnavailable):
        load_session(without, weights, replace(ov_cfg, precision="int8"))
    with pytest.raises(RuntimeUnavailable, match="OpenVINO only"):
        open_session(with_recipe, tmp_path / "conv.onnx", replace(ort_cfg, precision="int8"))


def test_recipe_validation() -> None:
    with pytest.raises(InvalidOptions, match="preset"):
        Int8Recipe(preset="fastest")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptions, match="bad pattern"):
        Int8Recipe(keep_float=("/stage1(",))


def test_user_models_keep_their_recipe(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    registry = ModelRegistry.load(models)
    spec = conv_spec(tmp_path, Int8Recipe(keep_float=("/head/.*",), preset="performance"))
    registry.register(spec)
    assert ModelRegistry.load(models).get("conv").int8 == spec.int8
    registry.register(replace(spec, name="plain", int8=None))
    assert ModelRegistry.load(models).get("plain").int8 is None
    text = models.read_text()
    for bad in ('"int8": "yes"', '"int8": {"keep_float": "/head/.*"}', '"int8": {"bits": 4}'):
        models.write_text(text.replace('"int8": null', bad, 1))
        with pytest.raises(InvalidOptions):
            ModelRegistry.load(models)


def test_devices_without_8bit_kernels_run_float_or_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = conv_spec(tmp_path)
    # The hardware query stands in for a CPU without 8-bit kernels (ARM, say).
    monkeypatch.setattr(runtimes, "int8_capable", lambda _device: False)
    assert resolve_precision(spec, RuntimeConfig()) == "float"
    with pytest.raises(RuntimeUnavailable, match="no 8-bit kernels"):
        resolve_precision(spec, RuntimeConfig(precision="int8"))


def test_int8_capability_of_this_machine() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split() if cpuinfo.is_file() else []
    if platform.machine() == "x86_64" and "avx2" in flags:
        assert runtimes.int8_capable("cpu")  # OpenVINO's 8-bit CPU kernels start at AVX2
    assert not runtimes.int8_capable("cuda")
