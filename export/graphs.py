"""Export each graph role of a model (train/families.py) to ONNX with the dynamo exporter, then check the graphs."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import warnings
from typing import Any

import onnx
import torch
from torch import nn

from vaeport.export.legacy import LEGACY_OPSET, to_legacy
from vaeport.export.targets import EXPORT_OPSETS
from vaeport.runtime.errors import ExportError
from vaeport.runtime.families import find_role
from vaeport.train.families import shapes, torch_roles
from vaeport.train.vae import VAE

BATCH_DIM = "N"
RANDOM_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "Dropout",
}


def to_onnx(
    module: nn.Module,
    examples: tuple[torch.Tensor, ...],
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    opset: int,
    batch_axes: tuple[int | None, ...] | None = None,
) -> bytes:
    """One module -> serialized ModelProto with a dynamic batch axis named N shared by every
    input (axis 0 unless `batch_axes` gives each input's, None for an input without one), at
    `opset` (18-23 straight from torch's exporter; 13 through the legacy rewrite of the opset-18
    export)."""
    axes = batch_axes if batch_axes is not None else tuple(0 for _ in examples)
    legacy = opset == LEGACY_OPSET
    module.eval()
    captured = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(captured),
            warnings.catch_warnings(),
            _quiet_logger("torch.onnx"),
            _quiet_logger("torch.export"),
        ):
            warnings.simplefilter("ignore")
            batch = torch.export.Dim(BATCH_DIM)
            program = torch.onnx.export(
                module,
                examples,
                dynamo=True,
                opset_version=EXPORT_OPSETS.start if legacy else opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=grouped_like_forward(module, [None if axis is None else {axis: batch} for axis in axes]),
                verbose=False,
            )
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.onnx.export failed: {detail}") from exc
    model = program.model_proto
    model.producer_name = "vaeport"
    strip_source_metadata(model)
    return portable(to_legacy(model) if legacy else model)


def grouped_like_forward(module: nn.Module, shapes: list[Any]) -> tuple[Any, ...]:
    """torch.export's dynamic_shapes follow forward's parameters: the inputs that fill a `*args`
    parameter are one entry, a tuple of theirs."""
    params = list(inspect.signature(module.forward).parameters.values())
    if not any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return tuple(shapes)
    fixed = sum(p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params)
    return (*shapes[:fixed], tuple(shapes[fixed:]))


def portable(model: onnx.ModelProto) -> bytes:
    """The serialized graph as it is written: the batch axis named N wherever a size is not fixed
    (code generators that need named dims refuse `unk__0`), and stamped with the
    lowest IR version its opsets allow (torch's exporter stamps the newest, which older runtimes
    refuse though they run every op: IR 10 vs 9 for opset 20 kept onnxruntime 1.17 out)."""
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    graph = model.graph
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_param = BATCH_DIM
    model.ir_version = onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
    return model.SerializeToString(deterministic=True)


def strip_source_metadata(model: onnx.ModelProto) -> None:
    """Drop the exporter's per-node metadata (Python stack traces with this machine's absolute
    paths, module names, source line numbers): a graph must not depend on where or from which
    checkout it was exported."""
    graphs = [model.graph, *(f for f in model.functions)]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            del node.metadata_props[:]
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
        if isinstance(graph, onnx.GraphProto):
            del graph.metadata_props[:]
            for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
                del value.metadata_props[:]


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_role(model: VAE, role: str, opset: int) -> bytes:
    """The graph of one role of the model's family, its inputs and outputs named as the runtime's
    family says (runtime/families.py)."""
    inputs, outputs = find_role(model.config.kind, model.config.prior, role).io(shapes(model))
    torch_role = torch_roles(model)[role]
    return to_onnx(
        torch_role.module(model),
        torch_role.examples(model),
        tuple(name for name, _ in inputs),
        tuple(name for name, _ in outputs),
        opset,
        tuple(shape.index("N") if "N" in shape else None for _, shape in inputs),
    )


def all_op_types(model: onnx.ModelProto) -> set[str]:
    """Op types of every node, in the main graph, subgraphs and local functions."""
    ops: set[str] = set()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            ops.add(node.op_type)
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
    for function in model.functions:
        ops.update(node.op_type for node in function.node)
    return ops


def check_graph(data: bytes, name: str) -> onnx.ModelProto:
    """onnx's full checker (with shape inference) and the no-random-op rule."""
    model = onnx.load_from_string(data)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{name}: the ONNX checker refused the graph: {str(exc).splitlines()[0]}") from exc
    random_ops = sorted(all_op_types(model) & RANDOM_OPS)
    if random_ops:
        raise ExportError(
            f"{name}: expected no random ops (sampling belongs to the runtime), got {', '.join(random_ops)}"
        )
    return model


def io_specs(model: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """Names, shapes (symbolic batch as 'N') and dtypes of a graph's inputs and outputs."""

    def spec(value: onnx.ValueInfoProto) -> dict[str, Any]:
        tensor = value.type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tensor.shape.dim]
        return {
            "name": value.name,
            "shape": shape,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
        }

    return {"inputs": [spec(v) for v in model.graph.input], "outputs": [spec(v) for v in model.graph.output]}
