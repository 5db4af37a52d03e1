"""Test-set measures of a VQ-VAE, in numpy, for both paths of vae-eval (torch run folders and ONNX
model folders give the same numbers): the bound -log p(x) <= -log p(x|codes) - log p(codes) and
its two parts, reconstruction MSE, how much of the codebook the test codes use, and its perplexity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vaeport.runtime.evaluate import bernoulli_log_likelihood
from vaeport.runtime.inputs import unit_images

Labels = np.ndarray | None


@dataclass
class VQBackend:
    encode: Callable[[np.ndarray], np.ndarray]  # images [B,C,H,W] in [0, 1] -> codes [B,h,w] int64
    decode: Callable[[np.ndarray], np.ndarray]  # codes -> Bernoulli means [B,C,H,W]
    code_nll: Callable[[np.ndarray, Labels], np.ndarray]  # (codes, labels) -> -log p(codes [| y]) [B] nats
    codebook_size: int


def evaluate_codes(
    backend: VQBackend,
    images: np.ndarray,
    labels: Labels = None,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """All measures over `images` (with their `labels` for a class-conditional prior: the bound is
    then on -log p(x|y)), in nats per image."""
    n, k = len(images), backend.codebook_size
    sums = {"recon": 0.0, "rate": 0.0, "mse": 0.0}
    counts = np.zeros(k, dtype=np.int64)
    for start in range(0, n, batch_size):
        x = unit_images(images[start : start + batch_size])
        y = None if labels is None else labels[start : start + batch_size]
        codes = backend.encode(x)
        probs = backend.decode(codes)
        sums["recon"] -= float(bernoulli_log_likelihood(probs, x).sum())
        sums["rate"] += float(backend.code_nll(codes, y).sum())
        sums["mse"] += float(((probs.astype(np.float64) - x) ** 2).mean(axis=(1, 2, 3)).sum())
        counts += np.bincount(codes.reshape(-1), minlength=k)
        if progress is not None:
            progress(len(x))
    freq = counts[counts > 0] / counts.sum()
    return {
        "test_images": n,
        "conditional": labels is not None,
        "test_recon": sums["recon"] / n,
        "test_kl": sums["rate"] / n,  # -log p(codes): the bound's rate term
        "test_neg_elbo": (sums["recon"] + sums["rate"]) / n,
        "test_mse": sums["mse"] / n,
        "codebook_size": k,
        "codes_used": int((counts > 0).sum()),
        "codes_used_share": float((counts > 0).mean()),
        "perplexity": float(np.exp(-(freq * np.log(freq)).sum())),
    }


def onnx_vq_backend(vq) -> VQBackend:
    """A loaded runtime `VQVAE`."""
    return VQBackend(vq.encode, vq.decode, lambda codes, y=None: vq.code_nll(codes, y), vq.codebook_size)
