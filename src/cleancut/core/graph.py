"""ONNX graph preparation: keep only the output we read, and widen fp16 weights to fp32.

ISNet exports carry six side outputs and five feature maps that we never read; pruning
them skips their upsampling work. onnxruntime's CPU kernels run the fp16-weight graph
through dozens of Cast nodes, and the same graph widened to fp32 ran about a third faster
on this project's 2-core machines with an identical mask.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from cleancut.errors import ModelError


def load(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError ... for a bad file
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc


def io_names(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    initialisers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initialisers]
    return inputs, [o.name for o in model.graph.output]


def resolve_names(
    model: onnx.ModelProto, input_name: str | None, output_name: str | None
) -> tuple[str, str]:
    inputs, outputs = io_names(model)
    if not inputs or not outputs:
        raise ModelError("the ONNX graph has no inputs or no outputs")
    inp = input_name or inputs[0]
    out = output_name or outputs[0]
    if inp not in inputs:
        raise ModelError(f"the model has no input {inp!r}; it has {inputs}")
    if out not in outputs:
        raise ModelError(f"the model has no output {out!r}; it has {outputs}")
    return inp, out


def prune_to_output(model: onnx.ModelProto, output_name: str) -> None:
    """Drop every node the named output does not depend on, and sort the rest
    topologically (some exporters write nodes out of order)."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    ordered: list[onnx.NodeProto] = []
    seen: set[int] = set()
    # The ISNet graph is a few hundred nodes deep along one path.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph.node) + 1000))
    try:

        def visit(name: str) -> None:
            node = producer.get(name)
            if node is None or id(node) in seen:
                return
            seen.add(id(node))
            for dep in node.input:
                if dep:
                    visit(dep)
            ordered.append(node)

        visit(output_name)
    finally:
        sys.setrecursionlimit(limit)
    kept = [onnx.NodeProto() for _ in ordered]
    for dst, src in zip(kept, ordered, strict=True):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(kept)
    outputs = [o for o in graph.output if o.name == output_name]
    del graph.output[:]
    graph.output.extend(outputs)
    used = {i for n in graph.node for i in n.input}
    initialisers = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initialisers)
    del graph.value_info[:]


def _widen(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
    if tensor.data_type != TensorProto.FLOAT16:
        return None
    arr = numpy_helper.to_array(tensor).astype(np.float32)
    return numpy_helper.from_array(arr, tensor.name)


def widen_fp16(model: onnx.ModelProto) -> bool:
    """Turn fp16 weights, constants and casts into fp32. Returns whether anything changed.
    Graph inputs and outputs that are fp16 are left alone (we feed and read fp32 only)."""
    graph = model.graph
    changed = False
    for init in graph.initializer:
        if (wide := _widen(init)) is not None:
            init.CopyFrom(wide)
            changed = True
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and (wide := _widen(attr.t)) is not None:
                attr.t.CopyFrom(wide)
                changed = True
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
                changed = True
    return changed


def prepare(path: Path, input_name: str | None, output_name: str | None) -> tuple[bytes, str, str]:
    """Serialized fp32 graph with one output, plus the resolved input and output names."""
    model = load(path)
    inp, out = resolve_names(model, input_name, output_name)
    prune_to_output(model, out)
    widen_fp16(model)
    return model.SerializeToString(), inp, out
