from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from cleancut.core import graph
from cleancut.errors import ModelError
from tests import tinymodels


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"input": x})[0])


def test_prepare_widens_fp16_prunes_and_sorts(tmp_path: Path) -> None:
    path = tinymodels.brightness_model(
        tmp_path / "m.onnx", fp16=True, side_outputs=True, shuffled=True
    )
    payload, inp, out = graph.prepare(path, "input", "output")
    assert (inp, out) == ("input", "output")
    model = onnx.load_from_string(payload)
    onnx.checker.check_model(model)  # topologically sorted and valid
    assert [o.name for o in model.graph.output] == ["output"]
    assert all(t.data_type == TensorProto.FLOAT for t in model.graph.initializer)
    casts = [a.i for n in model.graph.node if n.op_type == "Cast" for a in n.attribute]
    assert TensorProto.FLOAT16 not in casts

    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, 64, 64)).astype(np.float32)
    expected = 1 / (1 + np.exp(-tinymodels.GAIN * x.mean(axis=1, keepdims=True)))
    np.testing.assert_allclose(_run(payload, x), expected, atol=1e-5)


def test_default_names_and_bad_names(tmp_path: Path) -> None:
    path = tinymodels.brightness_model(tmp_path / "m.onnx", input_name="img", output_name="mask")
    model = graph.load(path)
    assert graph.resolve_names(model, None, None) == ("img", "mask")
    with pytest.raises(ModelError, match="no input 'input'"):
        graph.resolve_names(model, "input", None)
    with pytest.raises(ModelError, match="no output 'output'"):
        graph.resolve_names(model, None, "output")


def test_garbage_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match="cannot load"):
        graph.load(bad)
