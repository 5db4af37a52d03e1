"""Rewrite an opset-18 graph into opset-13 forms (`vae-export --target legacy`).

onnx's version converter has no down-adapters for the ops torch exports (Split-18, Relu-14, ...),
so this pass handles the few op types vaeport's graphs contain, each by its spec: ops whose later
versions only added types (bfloat16, float8) keep their node; the others are rewritten to the
opset-13 form with the same result; anything else is refused, naming the op and the opset it needs.
The parity gate then checks the rewritten graph against torch like any other.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from vaeport.runtime.errors import InputError

LEGACY_OPSET = 13
INT64_MAX = np.iinfo(np.int64).max
# Unchanged for float tensors since opset 13 (later versions only added types).
SAME_AT_13 = {
    "Add", "ArgMin", "Cast", "Clip", "Concat", "Conv", "DepthToSpace", "DequantizeLinear", "Div", "Erf", "Exp",
    "Expand", "Flatten", "Gather", "GatherND", "Gemm", "Identity", "LeakyRelu", "Less", "MatMul", "Mul", "Neg",
    "Not", "Pow", "QuantizeLinear", "ReduceSum", "Relu", "Sigmoid", "Slice", "Softmax", "Sub", "Tanh",
    "Transpose", "Unsqueeze", "Where",
}  # fmt: skip  (ReduceSum took its axes as an input at 13 already; Pow, Neg and Where only gained types since)
# Opset that introduced the form torch writes, for ops this pass cannot express at 13.
NEEDS = {"Gelu": 20, "Mish": 18, "GroupNormalization": 18, "Col2Im": 18}


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def drop_attributes(node: onnx.NodeProto, names: set[str]) -> None:
    kept = [a for a in node.attribute if a.name not in names]
    del node.attribute[:]
    node.attribute.extend(kept)


def refuse(node: onnx.NodeProto, opset: int, why: str) -> InputError:
    return InputError(
        f"--target legacy: {node.op_type} ({node.name or node.output[0]}) needs opset {opset} ({why}); "
        f"use --target portable"
    )


class Downgrade:
    """One pass over a graph; `constants` are its initializers by name."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        graph = self.model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        values = (*graph.value_info, *graph.output, *graph.input)
        self.shapes = {
            v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in values
        }
        self.types = {v.name: v.type.tensor_type.elem_type for v in values}
        self.types.update({t.name: t.data_type for t in graph.initializer})
        self.nodes: list[onnx.NodeProto] = []
        self.counter = 0

    def constant(self, hint: str, value: np.ndarray) -> str:
        self.counter += 1
        name = f"legacy_{hint}_{self.counter}"
        self.model.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def run(self) -> onnx.ModelProto:
        graph = self.model.graph
        for node in graph.node:
            getattr(self, f"node_{node.op_type}", self.node_other)(node)
        del graph.node[:]
        graph.node.extend(self.nodes)
        del graph.value_info[:]  # inferred again when the graph is stamped
        for opset in self.model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = LEGACY_OPSET
        return self.model

    def node_other(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise refuse(node, 0, f"an op of the {node.domain} domain")
        if node.op_type not in SAME_AT_13:
            raise refuse(node, NEEDS.get(node.op_type, 18), "no opset-13 form is known to vaeport")
        if node.op_type == "Cast" and attribute(node, "saturate", 1) != 1:
            raise refuse(node, 19, "saturate=0 is a float8 feature")
        drop_attributes(node, {"saturate"})
        self.nodes.append(node)

    def node_Split(self, node: onnx.NodeProto) -> None:
        axis = attribute(node, "axis", 0)
        if len(node.input) > 1 and node.input[1]:
            self.nodes.append(node)  # already the opset-13 form (sizes as an input)
            return
        dims = [self.shapes.get(out, []) for out in node.output]
        sizes = [shape[axis] if len(shape) > axis else None for shape in dims]
        if any(size is None for size in sizes):
            raise refuse(node, 18, "num_outputs over a dimension of unknown size")
        drop_attributes(node, {"num_outputs"})
        node.input.append(self.constant("split", np.array(sizes, dtype=np.int64)))
        self.nodes.append(node)

    def node_Reshape(self, node: onnx.NodeProto) -> None:
        shape = self.constants.get(node.input[1])
        if attribute(node, "allowzero", 0) and (shape is None or (shape == 0).any()):
            raise refuse(node, 14, "allowzero=1 with a shape that may hold 0")
        drop_attributes(node, {"allowzero"})  # without zeros in the shape, allowzero changes nothing
        self.nodes.append(node)

    def node_Shape(self, node: onnx.NodeProto) -> None:
        start, end = attribute(node, "start", 0), attribute(node, "end", None)
        if start == 0 and end is None:
            self.nodes.append(node)
            return
        full = f"{node.output[0]}_legacy_full"
        self.nodes.append(helper.make_node("Shape", [node.input[0]], [full], name=f"{node.name}_shape"))
        starts = self.constant("starts", np.array([start], dtype=np.int64))
        ends = self.constant("ends", np.array([INT64_MAX if end is None else end], dtype=np.int64))
        axes = self.constant("axes", np.array([0], dtype=np.int64))
        self.nodes.append(helper.make_node("Slice", [full, starts, ends, axes], list(node.output), name=node.name))

    def node_Resize(self, node: onnx.NodeProto) -> None:
        if attribute(node, "antialias", 0) != 0 or attribute(node, "axes") is not None:
            raise refuse(node, 18, "antialias or axes")
        if attribute(node, "keep_aspect_ratio_policy", b"stretch") != b"stretch":
            raise refuse(node, 18, "keep_aspect_ratio_policy")
        if attribute(node, "coordinate_transformation_mode", b"half_pixel") == b"half_pixel_symmetric":
            raise refuse(node, 19, "coordinate_transformation_mode half_pixel_symmetric")
        drop_attributes(node, {"antialias", "axes", "keep_aspect_ratio_policy"})
        self.nodes.append(node)

    def node_LayerNormalization(self, node: onnx.NodeProto) -> None:
        """LayerNormalization (opset 17) as the primitives it is defined by: (x - mean) /
        sqrt(var + epsilon) * scale + bias over the axes from `axis` on, in float32."""
        x = node.input[0]
        if len([out for out in node.output if out]) > 1:
            raise refuse(node, 17, "its mean and inverse deviation outputs")
        if self.types.get(x) != onnx.TensorProto.FLOAT or attribute(node, "stash_type", 1) != 1:
            raise refuse(node, 17, "a float32 input is rewritten, this one is not")
        axis, rank = attribute(node, "axis", -1), len(self.shapes.get(x, []))
        if axis >= 0 and not rank:
            raise refuse(node, 17, "a non-negative axis over an input of unknown rank")
        axes = list(range(axis, 0)) if axis < 0 else list(range(axis - rank, 0))
        name = node.name or node.output[0]
        part = lambda what: f"{name}_legacy_{what}"  # noqa: E731
        epsilon = self.constant("epsilon", np.array(attribute(node, "epsilon", 1e-5), dtype=np.float32))
        steps = [
            ("ReduceMean", [x], "mean", {"axes": axes, "keepdims": 1}),
            ("Sub", [x, part("mean")], "centred", {}),
            ("Mul", [part("centred"), part("centred")], "squared", {}),
            ("ReduceMean", [part("squared")], "variance", {"axes": axes, "keepdims": 1}),
            ("Add", [part("variance"), epsilon], "shifted", {}),
            ("Sqrt", [part("shifted")], "deviation", {}),
            ("Div", [part("centred"), part("deviation")], "normalized", {}),
        ]
        last = part("normalized")
        has_bias = len(node.input) > 2 and node.input[2]
        steps.append(("Mul", [last, node.input[1]], "scaled", {}))
        last = part("scaled")
        if has_bias:
            steps.append(("Add", [last, node.input[2]], "biased", {}))
            last = part("biased")
        for op, inputs, what, attrs in steps:
            self.nodes.append(helper.make_node(op, inputs, [part(what)], name=part(what), **attrs))
        self.nodes.append(helper.make_node("Identity", [last], [node.output[0]], name=name))


def to_legacy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same computation in opset-13 forms (InputError naming the first op that has none)."""
    return Downgrade(model).run()
