"""Test-set measures shared by the torch and the ONNX evaluation paths (numpy only).

A backend supplies three functions; the estimators, the noise and the arithmetic are the same for
both paths, so a run folder and its exported model folder agree to float precision:

- negative ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)), one posterior sample per image;
- IWAE-k bound (Burda et al. 2016): -log p(x) <= -logsumexp_k[log p(x|z_k) + log p(z_k)
  - log q(z_k|x)] + log k, with the model's own prior p(z) (runtime/distributions.py);
- reconstruction MSE of the posterior mean, active units (Cov_x E_q[z_d] > 0.01), KL per dim.

A conditional model is evaluated on (image, label) pairs: every term is conditioned on the label,
so the bound is on -log p(x|y).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vaeport.runtime.distributions import LOG_2PI, DiagonalGaussian, Prior, StandardNormal, kl_to_prior, posterior
from vaeport.runtime.errors import InputError
from vaeport.runtime.independence import (
    ACTIVE_UNIT_THRESHOLD,
    aggregate_total_correlation,
    latent_correlation,
    mean_abs_correlation,
)
from vaeport.runtime.inputs import unit_images
from vaeport.runtime.sampling import image_noise

TC_STREAM = 7  # the total correlation's codes are drawn from their own seeded stream
TC_SAMPLES = 2000  # codes whose log q(z) the total correlation averages (each against every test posterior)
# float32 sigmoid outputs can be exactly 0 or 1; clip so log() stays finite.
PROB_EPS = float(np.finfo(np.float32).eps) / 2


Labels = np.ndarray | None  # (N,) int64 class indices of a conditional model; None otherwise


@dataclass
class Backend:
    encode: Callable[[np.ndarray, Labels], tuple[np.ndarray, np.ndarray | None]]  # (x, y) -> (mean, log_var)
    log_likelihood: Callable[[np.ndarray, np.ndarray, Labels], np.ndarray]  # (z [M,D], x, y) -> [M] float64
    decode_mean: Callable[[np.ndarray, Labels], np.ndarray]  # (z, y) -> images in [0, 1]
    prior: Prior  # p(z): the model's own prior


def bernoulli_log_likelihood(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum over pixels of x log p + (1 - x) log(1 - p), per image, in float64."""
    p = np.clip(p.astype(np.float64), PROB_EPS, 1.0 - PROB_EPS)
    x = x.astype(np.float64)
    return (x * np.log(p) + (1.0 - x) * np.log1p(-p)).reshape(len(x), -1).sum(1)


def gaussian_log_likelihood(mean: np.ndarray, x: np.ndarray, scale: float) -> np.ndarray:
    diff = (x.astype(np.float64) - mean.astype(np.float64)) / scale
    return (-0.5 * diff**2 - math.log(scale) - 0.5 * LOG_2PI).reshape(len(x), -1).sum(1)


def logsumexp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    peak = a.max(axis=axis, keepdims=True)
    return (peak + np.log(np.exp(a - peak).sum(axis=axis, keepdims=True))).squeeze(axis)


def log_weights(
    backend: Backend, x: np.ndarray, q: DiagonalGaussian, eps: np.ndarray, y: Labels = None
) -> tuple[np.ndarray, np.ndarray]:
    """For z_k = q.sample(eps_k) (eps [k, B, D]): (log p(x|z_k), log w_k = log p(x|z_k) + log p(z_k)
    - log q(z_k|x)), each [k, B] in float64 (every term also given y for a conditional model)."""
    z = q.sample(eps)
    x_rep = np.broadcast_to(x, (len(eps), *x.shape)).reshape(-1, *x.shape[1:])
    y_rep = None if y is None else np.tile(y, len(eps))  # row k * B + i is sample k of image i
    log_px_z = backend.log_likelihood(z.reshape(-1, z.shape[-1]), x_rep, y_rep).reshape(len(eps), len(x))
    return log_px_z, log_px_z + backend.prior.log_prob(z) - q.log_prob(z)


MAX_K = 10_000  # importance samples per image: one image's k decodes stay in memory at once


def check_k(k: object, minimum: int = 1) -> int:
    """A number of importance samples: an integer from `minimum` to MAX_K (k decodes of one image
    are held at once; beyond a few thousand the bound barely moves, see Burda et al. 2016)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not minimum <= k <= MAX_K:
        raise InputError(f"expected k (importance samples per image) to be an integer {minimum}..{MAX_K}, got {k!r}")
    return int(k)


def iwae_nll(log_w: np.ndarray) -> np.ndarray:
    """The IWAE-k bound on -log p(x) per image from log weights [k, B]."""
    return -(logsumexp(log_w, axis=0) - math.log(len(log_w)))


def evaluate(
    backend: Backend,
    images: np.ndarray,
    k: int = 100,
    seed: int = 0,
    max_decode: int = 20_000,
    labels: Labels = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """All measures over `images` [N,C,H,W] (with their `labels` for a conditional model) in nats
    per image (k=0 skips the IWAE bound). `progress(done)` is called after each batch with how many
    images it held."""
    check_k(k, minimum=0)
    n = len(images)
    batch = max(1, max_decode // max(k, 1))
    sums = {"recon": 0.0, "kl": 0.0, "iwae": 0.0, "mse": 0.0}
    means, log_vars, first_eps, kl_dims = [], [], [], []
    variational = True
    for start in range(0, n, batch):
        x = unit_images(images[start : start + batch])
        y = None if labels is None else labels[start : start + batch]
        b = len(x)
        q = posterior(*backend.encode(x, y))
        mean = q.mode()
        means.append(mean.astype(np.float64))
        sums["mse"] += float(((backend.decode_mean(mean, y).astype(np.float64) - x) ** 2).mean(axis=(1, 2, 3)).sum())
        if not isinstance(q, DiagonalGaussian):  # plain autoencoder: the code is deterministic, no KL, no bound
            variational = False
            sums["recon"] -= float(backend.log_likelihood(mean, x, y).sum())
            if progress is not None:
                progress(b)
            continue
        eps = image_noise(seed, start, b, max(k, 1), mean.shape[1])  # (k, B, D)
        log_vars.append(q.log_var.astype(np.float64))
        first_eps.append(eps[0])
        if isinstance(backend.prior, StandardNormal):
            kl = q.kl(backend.prior)
            kl_dims.append(kl)
            sums["kl"] += float(kl.sum())
        else:  # a learned prior: the one-sample estimate at the ELBO's sample (the first of the k)
            sums["kl"] += float(kl_to_prior(q, backend.prior, q.sample(eps[0])).sum())
        log_px_z, log_w = log_weights(backend, x, q, eps, y)
        sums["recon"] -= float(log_px_z[0].sum())  # the ELBO's single sample is the first of the k
        if k > 0:
            sums["iwae"] += float(iwae_nll(log_w).sum())
        if progress is not None:
            progress(b)
    all_means = np.concatenate(means)
    activity = all_means.var(axis=0)
    result: dict = {
        "test_images": n,
        "conditional": labels is not None,  # every measure is then of x given its label y
        "test_recon": sums["recon"] / n,
        "test_kl": sums["kl"] / n,
        "test_neg_elbo": (sums["recon"] + sums["kl"]) / n,
        "test_mse": sums["mse"] / n,
        "active_units": int((activity > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": int(all_means.shape[1]),
        "mean_activity": [round(float(v), 5) for v in activity],
    }
    corr = latent_correlation(all_means)
    result["latent_correlation"] = [[round(float(v), 4) for v in row] for row in corr]
    result["mean_abs_correlation"] = mean_abs_correlation(corr, activity > ACTIVE_UNIT_THRESHOLD)
    if variational:
        stacked = (np.concatenate(a) for a in (means, log_vars, first_eps))
        result["total_correlation"] = aggregate_total_correlation(*stacked, TC_SAMPLES, seed=[seed, TC_STREAM])
        if kl_dims:  # in closed form only (N(0, I)): a learned prior's KL does not split by dimension
            result["kl_per_dim"] = [round(float(v), 5) for v in np.concatenate(kl_dims).mean(0)]
        if k > 0:
            result["iwae_k"] = k
            result["test_iwae_nll"] = sums["iwae"] / n
    else:
        del result["test_kl"]
        result["test_neg_elbo"] = None
    return result


def onnx_backend(vae, likelihood: str, scale: float | None = None) -> Backend:
    """Evaluate a loaded `vaeport.runtime.VAE` (decoder outputs probabilities or Gaussian means)."""

    def log_likelihood(z: np.ndarray, x: np.ndarray, y: Labels = None) -> np.ndarray:
        out = vae.decode(z, label=y)
        if likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        return gaussian_log_likelihood(out, x, float(scale))

    return Backend(
        encode=lambda x, y=None: vae.encode(x, label=y),
        log_likelihood=log_likelihood,
        decode_mean=lambda z, y=None: vae.decode(z, label=y),
        prior=vae.prior,
    )
