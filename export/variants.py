"""Optional graph variants: float16 (float32 inputs and outputs kept) and static int8 QDQ.

Each variant is checked against the fp32 graphs in ONNX Runtime, not against torch:
- fp16: every output within rtol 1e-2, atol 1e-2 of fp32 (half precision has ~3 significant
  digits; pixels in [0, 1] then differ by at most ~1/100), and never NaN/Inf;
- int8: accepted only if reconstructions of held-out images differ from fp32 by at most 0.01
  mean absolute pixel value.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from vaeport.export.feeds import Examples, role_feeds
from vaeport.export.graphs import check_graph, portable
from vaeport.export.parity import BATCH_SIZES, Tolerance, check_graph_session, compare
from vaeport.runtime.errors import ExportError
from vaeport.runtime.graph import Graph

FP16 = Tolerance(rtol=1e-2, atol=1e-2)
INT8_MAX_MEAN_PIXEL_DIFF = 0.01
SPEED_BATCH = 256
SPEED_REPEATS = 5


def topologically_sorted(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after its producers (the fp16 converter appends input casts last)."""
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ExportError("the fp16 graph has a cycle or an undefined input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if not any(n is r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(data: bytes, name: str) -> bytes:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load_from_string(data), keep_io_types=True)
    topologically_sorted(model.graph)
    converted = portable(model)
    check_graph(converted, name)
    return converted


def to_int8(data: bytes, name: str, calibration: tuple[np.ndarray, ...]) -> bytes:
    """Static QDQ quantization, per-channel int8 weights, uint8 activations, calibrated on
    `calibration` (the graph's inputs in its order, e.g. images and their labels)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    names = [value.name for value in onnx.load_from_string(data).graph.input]
    n = len(calibration[0])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(
                [{name: a[i : i + 32] for name, a in zip(names, calibration, strict=True)} for i in range(0, n, 32)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static warns on the root logger about optional pre-processing
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        model = onnx.load(str(dst))
    root.setLevel(level)
    quantized = portable(model)
    check_graph(quantized, name)
    return quantized


def session_inputs(graph: Graph) -> list[tuple[str, list[Any]]]:
    """A graph's inputs as (name, shape with "N" for the batch axis), what role_feeds draws from."""
    return [(v.name, [d if isinstance(d, int) else "N" for d in v.shape]) for v in graph.session.get_inputs()]


def fp16_parity(fp32: dict[str, bytes], fp16: dict[str, bytes], examples: Examples, seed: int) -> dict[str, Any]:
    """Every role's fp16 graph against its fp32 graph on the seeded inputs of export/feeds.py."""
    rng = np.random.default_rng(seed)
    checks = []
    for role in fp32:
        ref, cand = check_graph_session(fp32[role]), check_graph_session(fp16[role])
        for batch in BATCH_SIZES:
            feeds = role_feeds(session_inputs(ref), examples, batch, rng)
            for output, want, got in zip(ref.outputs, ref.run(feeds), cand.run(feeds), strict=True):
                checks.append(
                    compare(want, got, FP16, graph=role, output=output, against="fp32 onnxruntime-cpu", batch=batch)
                )
    return {
        "tolerance": {"rtol": FP16.rtol, "atol": FP16.atol},
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }


def reconstruct(graphs: dict[str, bytes], images: np.ndarray, labels: tuple[np.ndarray, ...]) -> np.ndarray:
    """Decoded posterior means (`labels`: () or (y,), fed to both graphs)."""
    encoder, decoder = check_graph_session(graphs["encoder"]), check_graph_session(graphs["decoder"])
    return decoder(encoder(images, *labels)[0], *labels)[0]


def decoder_feeds(examples: Examples, z: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """z alone, or with seeded labels of every class for a conditional model."""
    return (z,) if examples.labels is None else (z, rng.integers(0, examples.classes, len(z)).astype(np.int64))


def int8_parity(fp32: dict[str, bytes], int8: dict[str, bytes], held_out: Examples, seed: int) -> dict[str, Any]:
    labels = () if held_out.labels is None else (held_out.labels,)
    want, got = reconstruct(fp32, held_out.images, labels), reconstruct(int8, held_out.images, labels)
    pixel_diff = float(np.abs(want - got).mean())
    rng = np.random.default_rng(seed)
    z = decoder_feeds(held_out, rng.standard_normal((len(held_out.images), held_out.latent_dim), dtype=np.float32), rng)
    decoded = [check_graph_session(graphs["decoder"])(*z)[0] for graphs in (fp32, int8)]
    decoded_diff = float(np.abs(decoded[0] - decoded[1]).mean())
    finite = bool(np.isfinite(got).all())
    return {
        "rule": f"mean |pixel difference| of held-out reconstructions <= {INT8_MAX_MEAN_PIXEL_DIFF}",
        "held_out_images": len(held_out.images),
        "reconstruction_mean_abs_pixel_diff": pixel_diff,
        "prior_decode_mean_abs_pixel_diff": decoded_diff,
        "passed": finite and pixel_diff <= INT8_MAX_MEAN_PIXEL_DIFF,
    }


def decode_speed_ratio(fp32_decoder: bytes, variant_decoder: bytes, examples: Examples) -> float:
    """Variant decode images/s over fp32's at batch 256, alternating runs, median of repeats."""
    graphs = {"fp32": Graph(fp32_decoder), "variant": Graph(variant_decoder)}
    feeds = tuple(role_feeds(session_inputs(graphs["fp32"]), examples, SPEED_BATCH, np.random.default_rng(0)).values())
    times: dict[str, list[float]] = {"fp32": [], "variant": []}
    for graph in graphs.values():
        graph(*feeds)  # warm-up
    for _ in range(SPEED_REPEATS):
        for name, graph in graphs.items():
            started = time.perf_counter()
            graph(*feeds)
            times[name].append(time.perf_counter() - started)
    return float(np.median(times["fp32"]) / np.median(times["variant"]))


def make_fp16(fp32: dict[str, bytes], examples: Examples, seed: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The fp16 graphs of every role and their parity report; `report["passed"]` says whether they
    may be shipped."""
    graphs = {role: to_fp16(data, f"{role}.fp16") for role, data in fp32.items()}
    report = fp16_parity(fp32, graphs, examples, seed)
    if not report["passed"]:
        worst = max(report["checks"], key=lambda c: c.get("max_abs", float("inf")))
        report["refusal"] = (
            f"max |diff| to fp32 {worst.get('max_abs', float('inf')):.3g} ({worst['graph']}.{worst['output']}) "
            f"exceeds rtol {FP16.rtol}, atol {FP16.atol}"
        )
    else:
        report["decode_speed_vs_fp32"] = decode_speed_ratio(fp32["decoder"], graphs["decoder"], examples)
    return graphs, report


def make_int8(
    fp32: dict[str, bytes], calibration: Examples, held_out: Examples, seed: int
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The int8 graphs and their accuracy report; `report["passed"]` says whether they may be shipped.
    A conditional model is calibrated with the images' labels. int8 is judged by reconstructions,
    so it is made for families whose roles are an encoder and a decoder only."""
    if set(fp32) != {"encoder", "decoder"}:
        roles = ", ".join(fp32)
        refusal = f"int8 is judged by reconstructions, for an encoder and a decoder only; this model has {roles}"
        return {}, {"passed": False, "refusal": refusal}
    labels = () if calibration.labels is None else (calibration.labels,)
    encoder = to_int8(fp32["encoder"], "encoder.int8", (calibration.images, *labels))
    # The decoder sees posterior means of real images and prior draws at run time: calibrate on both
    # (a conditional decoder with the images' labels, then with seeded labels of every class).
    means = check_graph_session(fp32["encoder"])(calibration.images, *labels)[0]
    rng = np.random.default_rng(seed)
    prior = decoder_feeds(calibration, rng.standard_normal(means.shape, dtype=np.float32), rng)
    feeds = tuple(np.concatenate(pair) for pair in zip((means, *labels), prior, strict=True))
    decoder = to_int8(fp32["decoder"], "decoder.int8", feeds)
    graphs = {"encoder": encoder, "decoder": decoder}
    report = int8_parity(fp32, graphs, held_out, seed)
    report["calibration_images"] = len(calibration.images)
    if not report["passed"]:
        report["refusal"] = (
            f"mean |pixel diff| to fp32 on held-out images is "
            f"{report['reconstruction_mean_abs_pixel_diff']:.4f} (limit {INT8_MAX_MEAN_PIXEL_DIFF})"
        )
    else:
        report["decode_speed_vs_fp32"] = decode_speed_ratio(fp32["decoder"], decoder, held_out)
    return graphs, report
