"""The parity gate: torch eager vs ONNX Runtime (CPU) vs onnx.reference, on seeded real inputs,
for every graph role of the model's family (runtime/families.py).

Tolerance (fp32): an element passes when |onnx - torch| <= atol + rtol * |torch| with rtol 1e-3
and atol 1e-4 (numpy.allclose's rule). Pixels live in [0, 1] and latents are O(1), so 1e-4 is
~1000x float32 round-off on these magnitudes, yet far below any visible or metric-relevant change;
the relative part covers the few large-magnitude log-variances.

The figures it records (max and mean |difference|) go into vae.json, so they must not depend on
the exporting process: torch and ONNX Runtime run on one thread here, whatever the caller set
(a multi-threaded matmul may sum in another order). Reusable on its own:

    report = run_gate(model, {"encoder": enc_bytes, "decoder": dec_bytes}, Examples(images, latent_dim))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vaeport.export.feeds import Examples, Feeds, seeded_feeds
from vaeport.runtime.distributions import DiagonalGaussian, StandardNormal
from vaeport.runtime.errors import InputError
from vaeport.runtime.families import model_roles
from vaeport.runtime.files import CODES, ENCODER_INPUT, LABEL_INPUT
from vaeport.runtime.graph import Graph
from vaeport.runtime.sampling import posterior_noise
from vaeport.runtime.session import SessionSettings
from vaeport.train import distributions as torch_distributions
from vaeport.train.families import shapes, torch_roles
from vaeport.train.vae import VAE, DecoderImage

BATCH_SIZES = (1, 7, 64)
REFERENCE_BATCH = 7  # onnx.reference is a slow pure-Python interpreter: one small batch
CHECK_SETTINGS = SessionSettings(device="cpu", threads=1)  # every check's sessions: reproducible figures


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the duration (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_graph_session(data: bytes) -> Graph:
    """A graph's session as every check runs it: CPU, one thread."""
    return Graph(data, CHECK_SETTINGS)


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


def graph_checks(
    part: str,
    reference: Any,
    graph: Graph,
    inputs: dict[int, tuple[np.ndarray, ...]],
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


def torch_runner(module: torch.nn.Module):
    """The module as a graph-like callable: numpy inputs in graph order -> list of numpy outputs."""

    @torch.no_grad()
    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        out = module(*(torch.from_numpy(a) for a in inputs))
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    return run


def role_inputs(model: VAE) -> dict[str, Any]:
    """Each role's input spec (runtime/families.py) for this model: its family's and its prior's."""
    s = shapes(model)
    return {role.name: role.io(s)[0] for role in model_roles(model.config.kind, model.config.prior)}


def model_examples(model: VAE, images: np.ndarray, labels: np.ndarray | None) -> Examples:
    """`images` (with their `labels` for a conditional model) as the checks' Examples."""
    if model.conditional and labels is None:
        raise InputError("expected the test images' labels for a conditional model's parity gate, got none")
    k = model.config.codebook_size if model.config.kind == "vqvae" else 0
    return Examples(images, model.config.latent_dim, labels if model.conditional else None, model.config.num_classes, k)


def torch_outputs(model: VAE, feeds: dict[str, Feeds]) -> dict[str, list[np.ndarray]]:
    """Torch eager's outputs of every role for `feeds` (role -> inputs by name)."""
    model.eval()
    roles = torch_roles(model)
    with one_thread():
        return {role: torch_runner(roles[role].module(model))(*f.values()) for role, f in feeds.items()}


def run_gate(
    model: VAE,
    graphs: dict[str, bytes],
    examples: Examples,
    seed: int = 0,
    tol: Tolerance = FP32,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    use_reference: bool = True,
) -> dict[str, Any]:
    """Torch eager vs ONNX Runtime CPU (and onnx.reference) for every graph role, plus the random
    path. The inputs come from export/feeds.py: a conditional model's encoder gets the test
    images' own labels, its decoder seeded labels of every class."""
    model.eval()
    rng = np.random.default_rng(seed)
    inputs = role_inputs(model)
    feeds = {b: seeded_feeds(inputs, examples, b, rng) for b in batch_sizes}
    roles = torch_roles(model)
    opened = {role: check_graph_session(graphs[role]) for role in inputs}
    checks = []
    with one_thread():
        for role in inputs:
            checks += graph_checks(
                role,
                torch_runner(roles[role].module(model)),
                opened[role],
                {b: tuple(f[role].values()) for b, f in feeds.items()},
                tol,
                "onnxruntime-cpu",
                ReferenceGraph(graphs[role]) if use_reference else None,
            )
        if model.variational:
            largest = feeds[max(batch_sizes)]["encoder"]
            checks.append(random_path_check(model, opened["encoder"], opened["decoder"], largest, seed, tol))
        if "prior_sample" in opened:
            checks.append(flow_check(model, opened["prior_sample"], opened["prior_log_prob"], rng))
        if "prior_step" in opened:
            checks += vq_sampling_checks(model, opened["prior_step"], opened["prior"], rng, tol)
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
    """Same eps into torch's posterior sample + decoder and into the runtime's numpy posterior
    sample + ONNX (`feeds`: the images, and their labels for a conditional model, which both
    graphs get)."""
    x = feeds[ENCODER_INPUT]
    labels = tuple(a for name, a in feeds.items() if name != ENCODER_INPUT)
    torch_labels = tuple(torch.from_numpy(y) for y in labels)
    mean_t, log_var_t = model.encoder(torch.from_numpy(x), *torch_labels)
    eps = posterior_noise(seed, tuple(mean_t.shape))
    z_t = torch_distributions.DiagonalGaussian(mean_t, log_var_t).sample(torch.from_numpy(eps))
    torch_images = DecoderImage(model.decoder)(z_t, *torch_labels)
    mean, log_var = encoder(*feeds.values())
    onnx_images = decoder(DiagonalGaussian(mean, log_var).sample(eps), *labels)[0]
    return compare(
        torch_images.numpy(),
        onnx_images,
        tol,
        graph="encoder+decoder",
        output="x",
        against="numpy reparameterize + onnxruntime-cpu",
        batch=len(x),
    )


FLOW = Tolerance(rtol=1e-4, atol=2e-3)  # log-densities of ~-50 nats through a float32 inverse


@torch.no_grad()
def flow_check(model: VAE, sample: Graph, log_prob: Graph, rng: np.random.Generator) -> dict[str, Any]:
    """The two prior graphs are one flow: prior_log_prob(prior_sample(eps)) equals
    log N(eps) - log|det J| with the log-determinant torch's flow accumulates while sampling."""
    eps = rng.standard_normal((max(BATCH_SIZES), model.config.latent_dim), dtype=np.float32)
    onnx_log_prob = log_prob(sample(eps)[0])[0]
    _, log_det = model.prior.forward_with_log_det(torch.from_numpy(eps))
    expected = StandardNormal(model.config.latent_dim).log_prob(eps) - log_det.numpy()
    return compare(
        expected,
        onnx_log_prob,
        FLOW,
        graph="prior_sample+prior_log_prob",
        output="log_prob",
        against="log N(eps) - log|det J| (torch)",
        batch=len(eps),
    )


@torch.no_grad()
def vq_sampling_checks(
    model: Any, step: Graph, prior: Graph, rng: np.random.Generator, tol: Tolerance
) -> list[dict[str, Any]]:
    """A VQ-VAE's sampling path: from the same uniforms, the runtime's sampler (numpy draws over
    the prior_step graph) gives exactly the codes torch's sampler gives, and the logits of each
    step equal the whole-grid prior graph's on the codes drawn (the cache is one computation with
    the grid, not an approximation of it)."""
    from vaeport.runtime.vq_sampling import CodeShape, sample_codes
    from vaeport.train.ar_prior import sample_codes as torch_sample_codes

    n, length, k = REFERENCE_BATCH, model.prior.length, model.config.codebook_size
    uniforms = rng.random((n, length))
    labels = rng.integers(0, model.config.num_classes, n).astype(np.int64) if model.conditional else None
    shape = CodeShape(model.grid, k, model.prior.cache_shape)
    logits = np.empty((n, length, k), dtype=np.float32)
    codes = sample_codes(lambda feeds: step.session.run(step.outputs, feeds), shape, uniforms, labels, 1.0, logits)
    torch_labels = None if labels is None else torch.from_numpy(labels)
    expected = torch_sample_codes(model.prior, torch.from_numpy(uniforms), torch_labels).numpy()
    mismatched = int((expected != codes).sum())
    same_codes = {
        "graph": "prior_step",
        "output": "codes",
        "against": "torch sample_codes (same uniforms)",
        "batch": n,
        "max_abs": float(np.abs(expected - codes).max()),
        "mean_abs": float(mismatched / codes.size),
        "passed": mismatched == 0,
        **({} if mismatched == 0 else {"error": f"{mismatched} of {codes.size} codes differ"}),
    }
    feeds = {CODES: codes} if labels is None else {CODES: codes, LABEL_INPUT: labels}
    grid = prior.run(feeds)[0].reshape(n, length, k)
    consistent = compare(grid, logits, tol, graph="prior_step+prior", output="logits", against="prior", batch=n)
    return [same_codes, consistent]


def failures(report: dict[str, Any]) -> list[str]:
    """One line per failed check, for error messages."""
    return [
        f"{c['graph']}.{c['output']} vs {c['against']} at batch {c['batch']}: "
        f"max |diff| {c.get('max_abs', float('nan')):.3g}{' (' + c['error'] + ')' if 'error' in c else ''}"
        for c in report["checks"]
        if not c["passed"]
    ]
