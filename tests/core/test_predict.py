"""Sessions and the model pool on tiny generated models, through both runtimes."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from cleancut.core.models import ModelRegistry, spec_from_file
from cleancut.core.predict import ModelPool, Segmenter
from cleancut.core.runtimes import RuntimeConfig, open_session, resolve_runtime
from cleancut.core.weights import WeightsCache
from cleancut.errors import ModelError, ModelNotFound, RuntimeUnavailable
from tests import tinymodels


def test_segmenter_finds_the_bright_square(tiny_pool: ModelPool) -> None:
    seg = tiny_pool.get("tiny")
    img = tinymodels.square_image(256, 256, (64, 64, 192, 192))
    prob = seg.predict(img)
    assert prob.shape == (64, 64) and prob.dtype == np.float32
    assert prob[32, 32] > 0.99 and prob[2, 2] < 0.01
    assert prob.min() >= 0.0 and prob.max() <= 1.0


def test_pool_loads_each_model_once_under_concurrency(tiny_pool: ModelPool) -> None:
    got = []
    threads = [threading.Thread(target=lambda: got.append(tiny_pool.get("tiny"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in got}) == 1
    assert tiny_pool.loaded() == ["tiny"]
    with pytest.raises(ModelNotFound):
        tiny_pool.get("nope")


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
@pytest.mark.parametrize(
    ("variant", "activation"),
    [({"fp16": True}, "none"), ({"side_outputs": True}, "none"), ({"logits": True}, "sigmoid")],
)
def test_graph_variants_agree_across_runtimes(
    tmp_path: Path, runtime: str, variant: dict[str, bool], activation: str
) -> None:
    path = tinymodels.brightness_model(tmp_path / "m.onnx", **variant)
    spec = spec_from_file("v", path, "isnet", input_size=(64, 64), activation=activation)
    pool = ModelPool(ModelRegistry([spec]), WeightsCache(tmp_path), RuntimeConfig(runtime=runtime))  # type: ignore[arg-type]
    seg = pool.get("v")
    assert seg.runtime.startswith(runtime)
    img = tinymodels.square_image(64, 64, (16, 16, 48, 48))
    x = seg.preprocess(img)
    expected = 1 / (1 + np.exp(-tinymodels.GAIN * x.mean(axis=1)[0]))
    # OpenVINO may pick bf16 on CPUs that support it.
    np.testing.assert_allclose(seg.predict(img), expected, atol=0.02)


def test_preprocess_follows_the_spec(tiny_pool: ModelPool) -> None:
    seg = tiny_pool.get("tiny")
    img = np.zeros((10, 20, 3), np.uint8)
    img[..., 0] = 255
    x = seg.preprocess(img)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[0, :, 5, 5], [(255 - 128) / 256, -0.5, -0.5], atol=1e-6)


def test_preprocess_normalises_each_channel_as_numpy_does(tiny_pool: ModelPool) -> None:
    # A U2-Net/BiRefNet-style spec: per-channel ImageNet statistics, a non-square input.
    seg = tiny_pool.get("tiny")
    spec = dataclasses.replace(
        seg.spec, input_size=(48, 32), mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4)
    )
    img = np.random.default_rng(3).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    x = Segmenter(spec, seg.session).preprocess(img)
    # area averaging in float, as OpenCV does it on float pixels (no rounding to bytes)
    small = cv2.resize(img.astype(np.float32), (48, 32), interpolation=cv2.INTER_AREA)
    want = (small - np.float32(spec.mean)) * (1 / np.float32(spec.std))
    assert x.shape == (1, 3, 32, 48) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[0], want.transpose(2, 0, 1), rtol=0, atol=1e-4)


def test_missing_device_fails_loudly(tiny_spec, tiny_model: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeUnavailable, match="cuda"):
        open_session(tiny_spec, tiny_model, RuntimeConfig(runtime="onnxruntime", device="cuda"))
    with pytest.raises(RuntimeUnavailable, match="gpu"):
        open_session(tiny_spec, tiny_model, RuntimeConfig(runtime="openvino", device="gpu"))
    assert resolve_runtime(RuntimeConfig(device="cuda")) == "onnxruntime"
    assert resolve_runtime(RuntimeConfig()) == "openvino"


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_wrong_output_name_is_a_model_error(tmp_path: Path, runtime: str) -> None:
    path = tinymodels.brightness_model(tmp_path / "m.onnx")
    spec = spec_from_file("w", path, "isnet", input_size=(64, 64), output_name="nope")
    with pytest.raises(ModelError, match="no output 'nope'"):
        open_session(spec, path, RuntimeConfig(runtime=runtime))  # type: ignore[arg-type]


def test_throughput_mode_runs_requests_side_by_side(tiny_spec, tiny_model: Path) -> None:  # type: ignore[no-untyped-def]
    def cfg(**kw: object) -> RuntimeConfig:
        return RuntimeConfig(runtime="openvino", threads=2, requests=2, **kw)  # type: ignore[arg-type]

    latency = open_session(tiny_spec, tiny_model, cfg())
    throughput = open_session(tiny_spec, tiny_model, cfg(mode="throughput"))
    assert "streams" not in latency.runtime
    assert throughput.runtime.endswith(" (2 streams)")
    # a stream needs a thread of its own: one thread means one stream, whatever the mode
    one_thread = dataclasses.replace(cfg(mode="throughput"), threads=1)
    single = open_session(tiny_spec, tiny_model, one_thread)
    assert "streams" not in single.runtime
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(1, 3, 64, 64)).astype(np.float32) for _ in range(6)]
    expected = [latency.run(b) for b in batches]
    got: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        got[i] = throughput.run(batches[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        np.testing.assert_allclose(got[i], want, atol=0.02)
