"""A test-only segmenter that is slow on purpose, with real work rather than sleeps: the tiny
brightness model's answer plus a stack of convolutions whose result is multiplied by zero.

The worker-kill test needs a job that is still in inference when the worker is killed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests import tinymodels


def slow_model(path: Path, *, size: int = 640, channels: int = 32, layers: int = 16) -> Path:
    """About 3 s of inference on one core of the development machine."""
    x = "input"
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([tinymodels.GAIN], dtype=np.float32), "gain"),
        numpy_helper.from_array(np.array([0.0], dtype=np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("ReduceMean", [x], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
    ]
    previous, width = x, 3
    for i in range(layers):
        weight = rng.standard_normal((channels, width, 3, 3)).astype(np.float32) * 0.05
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        previous, width = f"r{i}", channels
    nodes += [
        helper.make_node("ReduceMean", [previous], ["busy"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["busy", "zero"], ["nothing"]),
        helper.make_node("Add", ["scaled", "nothing"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    shape = [1, 3, size, size]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, size, size])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
