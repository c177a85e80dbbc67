"""Tiny real ONNX graphs, generated on the fly, that behave like a segmenter.

They run through exactly the loading and inference code the real model uses: a
"brightness segmenter" calls bright pixels foreground, which makes expected masks easy to
derive from synthetic images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
GAIN = 40.0  # sigmoid(40 * (x - 128) / 256): 0 → ~0, 255 → ~1, 128 → 0.5


def _value(
    name: str, size: int, channels: int, dtype: int = TensorProto.FLOAT
) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, [1, channels, size, size])


def brightness_model(
    path: Path,
    *,
    size: int = SIZE,
    fp16: bool = False,
    side_outputs: bool = False,
    logits: bool = False,
    shuffled: bool = False,
    input_name: str = "input",
    output_name: str = "output",
) -> Path:
    """Write a model computing sigmoid(GAIN * mean_c(input)); see the module docstring.

    fp16: the gain lives in an fp16 initializer behind Cast nodes, like the IMG.LY export.
    side_outputs: adds an extra output the pipeline must ignore (and prune).
    logits: leaves out the final sigmoid, for specs with activation="sigmoid".
    shuffled: writes the nodes out of topological order, as some exporters do.
    """
    nodes = [helper.make_node("ReduceMean", [input_name], ["mean"], axes=[1], keepdims=1)]
    inits = []
    if fp16:
        inits.append(numpy_helper.from_array(np.array([GAIN], dtype=np.float16), "gain"))
        nodes += [
            helper.make_node("Cast", ["mean"], ["mean16"], to=TensorProto.FLOAT16),
            helper.make_node("Mul", ["mean16", "gain"], ["scaled16"]),
            helper.make_node("Cast", ["scaled16"], ["scaled"], to=TensorProto.FLOAT),
        ]
    else:
        inits.append(numpy_helper.from_array(np.array([GAIN], dtype=np.float32), "gain"))
        nodes.append(helper.make_node("Mul", ["mean", "gain"], ["scaled"]))
    if logits:
        nodes.append(helper.make_node("Identity", ["scaled"], [output_name]))
    else:
        nodes.append(helper.make_node("Sigmoid", ["scaled"], [output_name]))
    outputs = [_value(output_name, size, 1)]
    if side_outputs:
        nodes.append(helper.make_node("Neg", [output_name], ["side"]))
        outputs.append(_value("side", size, 1))
    if shuffled:
        nodes = nodes[::-1]
    graph = helper.make_graph(nodes, "brightness", [_value(input_name, size, 3)], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def square_image(
    width: int = 200, height: int = 150, box: tuple[int, int, int, int] = (50, 40, 150, 110)
) -> np.ndarray:
    """Dark background with a bright rectangle (x0, y0, x1, y1): the subject."""
    img = np.full((height, width, 3), 20, dtype=np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = (235, 230, 225)
    return img


def conv_brightness_model(path: Path, *, size: int = SIZE) -> Path:
    """The brightness segmenter built from two convolutions, which an 8-bit recipe can
    quantise: ``stem`` splits the channel mean into its positive and negative parts (a
    ReLU keeps each), ``head`` subtracts them again, then GAIN and a sigmoid as above."""
    third = 1.0 / 3.0
    stem = np.zeros((2, 3, 3, 3), np.float32)
    stem[0, :, 1, 1], stem[1, :, 1, 1] = third, -third  # 3×3 kernels with a centre tap
    head = np.array([1.0, -1.0], np.float32).reshape(1, 2, 1, 1)
    inits = [
        numpy_helper.from_array(stem, "stem.weight"),
        numpy_helper.from_array(np.zeros(2, np.float32), "stem.bias"),
        numpy_helper.from_array(head, "head.weight"),
        numpy_helper.from_array(np.array([GAIN], np.float32), "gain"),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["input", "stem.weight", "stem.bias"],
            ["stem"],
            pads=[1, 1, 1, 1],
            name="/stem/conv",
        ),
        helper.make_node("Relu", ["stem"], ["stem_relu"], name="/stem/relu"),
        helper.make_node("Conv", ["stem_relu", "head.weight"], ["mean"], name="/head/conv"),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"], name="/head/gain"),
        helper.make_node("Sigmoid", ["scaled"], ["output"], name="/head/sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "conv-brightness", [_value("input", size, 3)], [_value("output", size, 1)], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
