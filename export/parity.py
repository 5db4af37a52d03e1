"""The parity gate: torch eager vs ONNX Runtime (CPU) vs onnx.reference, on seeded real inputs.

Tolerance (fp32): an element passes when |onnx - torch| <= atol + rtol * |torch| with rtol 1e-3
and atol 1e-4 (numpy.allclose's rule). Pixels live in [0, 1] and latents are O(1), so 1e-4 is
~1000x float32 round-off on these magnitudes, yet far below any visible or metric-relevant change;
the relative part covers the few large-magnitude log-variances. Reusable on its own:

    report = run_gate(model, {"encoder": enc_bytes, "decoder": dec_bytes}, test_images)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vaeport.runtime.errors import InputError
from vaeport.runtime.graph import Graph
from vaeport.runtime.sampling import posterior_noise, reparameterize
from vaeport.train.vae import VAE, DecoderImage
from vaeport.train.vae import reparameterize as torch_reparameterize

BATCH_SIZES = (1, 7, 64)
REFERENCE_BATCH = 7  # onnx.reference is a slow pure-Python interpreter: one small batch


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def passes(self, reference: np.ndarray, candidate: np.ndarray) -> bool:
        return bool(np.all(np.abs(candidate - reference) <= self.atol + self.rtol * np.abs(reference)))


FP32 = Tolerance(rtol=1e-3, atol=1e-4)


def compare(reference: np.ndarray, candidate: np.ndarray, tol: Tolerance, **labels: Any) -> dict[str, Any]:
    """Max and mean absolute difference, and pass/fail (non-finite values always fail)."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        return {**labels, "passed": False, "error": f"shape {list(candidate.shape)} != {list(reference.shape)}"}
    finite = bool(np.isfinite(candidate).all())
    diff = np.abs(candidate - reference)
    return {
        **labels,
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "passed": finite and tol.passes(reference, candidate),
        **({} if finite else {"error": "NaN or Inf in the output"}),
    }


def batch_of(images: np.ndarray, n: int, dtype: type = np.float32) -> np.ndarray:
    """The first n images (or labels), cycling when fewer exist."""
    return np.resize(images, (n, *images.shape[1:])).astype(dtype)


Feeds = tuple[np.ndarray, ...]  # a graph's inputs in its order: (x[, y]) or (z[, y])


@dataclass(frozen=True)
class Examples:
    """Real images for the checks, with their labels and the class count of a conditional model
    (labels None and classes 0 for an unconditional one)."""

    images: np.ndarray
    latent_dim: int
    labels: np.ndarray | None = None
    classes: int = 0

    def encoder_feeds(self, images: np.ndarray, labels: np.ndarray | None) -> Feeds:
        return (images,) if self.labels is None else (images, labels)

    def decoder_feeds(self, z: np.ndarray, rng: np.random.Generator) -> Feeds:
        """z alone, or with seeded labels of every class (drawn only for a conditional model, so
        an unconditional model's checks see the numbers they always saw)."""
        return (z,) if self.labels is None else (z, rng.integers(0, self.classes, len(z)).astype(np.int64))


class ReferenceGraph:
    """onnx.reference's interpreter over graph bytes (the spec's own semantics)."""

    def __init__(self, data: bytes) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load_from_string(data)
        self.evaluator = ReferenceEvaluator(model)
        self.inputs = [value.name for value in model.graph.input]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        return list(self.evaluator.run(None, dict(zip(self.inputs, arrays, strict=True))))


@torch.no_grad()
def torch_encoder(model: VAE, *inputs: np.ndarray) -> list[np.ndarray]:
    return [t.numpy() for t in model.encoder(*(torch.from_numpy(a) for a in inputs))]


@torch.no_grad()
def torch_decoder(model: VAE, *inputs: np.ndarray) -> list[np.ndarray]:
    return [DecoderImage(model.decoder)(*(torch.from_numpy(a) for a in inputs)).numpy()]


def graph_checks(
    part: str,
    reference: Any,
    graph: Graph,
    inputs: dict[int, Feeds],
    tol: Tolerance,
    against: str,
    interpreter: ReferenceGraph | None = None,
) -> list[dict[str, Any]]:
    """Compare `graph` (and the interpreter at REFERENCE_BATCH) with `reference` per batch size."""
    checks = []
    for batch, feeds in inputs.items():
        expected = reference(*feeds)
        runners = [(against, graph)]
        if interpreter is not None and batch == REFERENCE_BATCH:
            runners.append(("onnx.reference", interpreter))
        for name, runner in runners:
            for output, want, got in zip(graph.outputs, expected, runner(*feeds), strict=True):
                checks.append(compare(want, got, tol, graph=part, output=output, against=name, batch=batch))
    return checks


def run_gate(
    model: VAE,
    graphs: dict[str, bytes],
    test_images: np.ndarray,
    seed: int = 0,
    tol: Tolerance = FP32,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    use_reference: bool = True,
    test_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Torch eager vs ONNX Runtime CPU (and onnx.reference) for both graphs, plus the random path.
    A conditional model's encoder is fed the test images' own labels (`test_labels`), its decoder
    seeded labels of every class."""
    model.eval()
    rng = np.random.default_rng(seed)
    encoder, decoder = Graph(graphs["encoder"]), Graph(graphs["decoder"])
    if model.conditional and test_labels is None:
        raise InputError("expected the test images' labels for a conditional model's parity gate, got none")
    labels = test_labels if model.conditional else None
    examples = Examples(test_images, model.config.latent_dim, labels, model.config.num_classes)
    orders = {b: rng.permutation(len(test_images)) for b in batch_sizes}
    encoder_inputs = {
        b: examples.encoder_feeds(
            batch_of(test_images[order], b), None if labels is None else batch_of(labels[order], b, np.int64)
        )
        for b, order in orders.items()
    }
    latents = {b: rng.standard_normal((b, model.config.latent_dim), dtype=np.float32) for b in batch_sizes}
    decoder_inputs = {b: examples.decoder_feeds(z, rng) for b, z in latents.items()}
    checks = graph_checks(
        "encoder",
        lambda *a: torch_encoder(model, *a),
        encoder,
        encoder_inputs,
        tol,
        "onnxruntime-cpu",
        ReferenceGraph(graphs["encoder"]) if use_reference else None,
    )
    checks += graph_checks(
        "decoder",
        lambda *a: torch_decoder(model, *a),
        decoder,
        decoder_inputs,
        tol,
        "onnxruntime-cpu",
        ReferenceGraph(graphs["decoder"]) if use_reference else None,
    )
    if model.variational:
        checks.append(random_path_check(model, encoder, decoder, encoder_inputs[max(batch_sizes)], seed, tol))
    return {
        "tolerance": {**asdict(tol), "rule": "|onnx - torch| <= atol + rtol * |torch|"},
        "batch_sizes": list(batch_sizes),
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }


@torch.no_grad()
def random_path_check(
    model: VAE, encoder: Graph, decoder: Graph, feeds: Feeds, seed: int, tol: Tolerance
) -> dict[str, Any]:
    """Same eps into torch's reparameterize + decoder and into the runtime's numpy sampling + ONNX
    (`feeds`: the images, and their labels for a conditional model, which both graphs get)."""
    x, labels = feeds[0], feeds[1:]
    torch_labels = tuple(torch.from_numpy(y) for y in labels)
    mean_t, log_var_t = model.encoder(torch.from_numpy(x), *torch_labels)
    eps = posterior_noise(seed, tuple(mean_t.shape))
    z_t = torch_reparameterize(mean_t, log_var_t, torch.from_numpy(eps))
    torch_images = DecoderImage(model.decoder)(z_t, *torch_labels)
    mean, log_var = encoder(*feeds)
    onnx_images = decoder(reparameterize(mean, log_var, eps), *labels)[0]
    return compare(
        torch_images.numpy(),
        onnx_images,
        tol,
        graph="encoder+decoder",
        output="x",
        against="numpy reparameterize + onnxruntime-cpu",
        batch=len(x),
    )


def failures(report: dict[str, Any]) -> list[str]:
    """One line per failed check, for error messages."""
    return [
        f"{c['graph']}.{c['output']} vs {c['against']} at batch {c['batch']}: "
        f"max |diff| {c.get('max_abs', float('nan')):.3g}{' (' + c['error'] + ')' if 'error' in c else ''}"
        for c in report["checks"]
        if not c["passed"]
    ]
