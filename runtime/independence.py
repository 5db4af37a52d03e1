"""How independent a model's latent dimensions are: the total correlation of the aggregate
posterior q(z) = 1/N sum_n q(z|x_n), in nats, and the correlation matrix of the posterior means.

    TC = E_q(z)[log q(z) - sum_d log q(z_d)]   (0 exactly when q(z) factorises over dimensions)

Two estimators of q(z) and its marginals:

- `aggregate_total_correlation` (what vae-eval reports): every sampled code against the mixture of
  all N posteriors, so the densities are exact for the evaluated set and the only error is the
  Monte Carlo over codes;
- `total_correlation`: minibatch-stratified sampling (Chen et al. 2018, "Isolating Sources of
  Disentanglement in VAEs", appendix C.2), what beta-TCVAE trains with (train/loss.py uses the same
  weights in torch). In a batch of M codes drawn from a data set of N, the code's own image weighs
  1/N, one other image (the next in the batch) (N - M + 1) / (N (M - 1)), and the remaining M - 2
  images 1 / (M - 1) each; every row sums to 1. (The reference implementation puts the stratum's
  weight in a bottom row that shifts it by one; this one takes the next image cyclically, so every
  row is the same estimator.) Its bias falls slowly with M when N is large and the posteriors are
  narrow (benchmarks/tc_estimators.py measures it), which is why evaluation uses the other.

numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from vaeport.runtime.distributions import LOG_2PI
from vaeport.runtime.errors import InputError

ACTIVE_UNIT_THRESHOLD = 0.01  # a dimension whose posterior means vary less than this over the data is inactive
TC_BATCH = 1024  # codes per stratified batch: the estimator's bias falls as the batch grows
ROW_CHUNK = 128  # rows of the (M, M, D) density table computed at once


def mss_log_weights(batch: int, dataset_size: int) -> np.ndarray:
    """log of the (batch, batch) minibatch-stratified importance weights for a data set of
    `dataset_size` images: row i weighs image j's posterior in the estimate of q(z_i)."""
    if dataset_size < batch:
        raise InputError(
            f"expected the data set size ({dataset_size}) to be at least the batch size ({batch}) for the "
            "total correlation's minibatch-stratified estimator"
        )
    if batch == 1:
        return np.full((1, 1), -math.log(dataset_size))
    m = batch - 1
    weights = np.full((batch, batch), 1.0 / m)
    rows = np.arange(batch)
    weights[rows, (rows + 1) % batch] = (dataset_size - m) / (dataset_size * m)
    weights[rows, rows] = 1.0 / dataset_size
    return np.log(weights)


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    peak = a.max(axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.exp(a - peak).sum(axis=axis))


def batch_log_densities(
    z: np.ndarray, mean: np.ndarray, log_var: np.ndarray, dataset_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """For one batch of codes z (M, D) with their posteriors: log q(z_i) (M,) and
    sum_d log q(z_id) (M,), both minibatch-stratified estimates."""
    m = len(z)
    log_w = mss_log_weights(m, dataset_size)
    joint, marginals = np.empty(m), np.empty(m)
    inv_var = np.exp(-log_var)
    for start in range(0, m, ROW_CHUNK):
        zi = z[start : start + ROW_CHUNK, None, :]  # (r, 1, D) against every posterior (1, M, D)
        log_q = -0.5 * (LOG_2PI + log_var[None] + (zi - mean[None]) ** 2 * inv_var[None])  # (r, M, D)
        w = log_w[start : start + ROW_CHUNK, :, None]
        joint[start : start + ROW_CHUNK] = logsumexp(log_q.sum(-1) + w[..., 0], axis=1)
        marginals[start : start + ROW_CHUNK] = logsumexp(log_q + w, axis=1).sum(-1)
    return joint, marginals


def total_correlation(
    mean: np.ndarray, log_var: np.ndarray, eps: np.ndarray, batch: int = TC_BATCH, dataset_size: int | None = None
) -> float:
    """The aggregate posterior's total correlation in nats, from posteriors (N, D) of N images and
    noise eps (N, D) (one code z = mean + exp(log_var / 2) * eps per image). The images are taken
    in order in batches of `batch` (shuffle them first if their order means something); q(z) is
    the mixture over `dataset_size` images (default N)."""
    n, d = mean.shape
    if log_var.shape != (n, d) or eps.shape != (n, d):
        raise InputError(
            f"expected mean, log_var and eps of one shape [N,D], got {list(mean.shape)}, "
            f"{list(log_var.shape)} and {list(eps.shape)}"
        )
    mean, log_var = mean.astype(np.float64), log_var.astype(np.float64)
    z = mean + np.exp(0.5 * log_var) * eps
    size = n if dataset_size is None else dataset_size
    total = 0.0
    for start in range(0, n, batch):
        part = slice(start, start + batch)
        joint, marginals = batch_log_densities(z[part], mean[part], log_var[part], size)
        total += float((joint - marginals).sum())
    return total / n


def mixture_log_density(z: np.ndarray, mean: np.ndarray, log_var: np.ndarray, batch: int = 500) -> np.ndarray:
    """log q(z_j) for q = (1/N) sum_i N(mean_i, diag exp(log_var_i)), each z_j [M, D] -> [M], float64.
    The squared distances are three matrix products, so M x N x D never sits in memory."""
    mean, var = mean.astype(np.float64), np.exp(log_var.astype(np.float64))
    inv = 1.0 / var
    constant = -0.5 * (np.log(var).sum(1) + (mean**2 * inv).sum(1) + mean.shape[1] * LOG_2PI)  # [N]
    out = np.empty(len(z))
    for start in range(0, len(z), batch):
        part = z[start : start + batch].astype(np.float64)
        log_n = -0.5 * ((part**2) @ inv.T - 2.0 * part @ (mean * inv).T) + constant  # [B, N]
        out[start : start + batch] = logsumexp(log_n, axis=1) - math.log(len(mean))
    return out


def aggregate_total_correlation(
    mean: np.ndarray, log_var: np.ndarray, eps: np.ndarray, samples: int = 2000, seed: int | list[int] = 0
) -> float:
    """The total correlation of q(z) = the mixture of all N posteriors (N, D), in nats: the mean of
    log q(z) - sum_d log q_d(z_d) over codes z = mean + exp(log_var / 2) * eps of `samples` images
    drawn without replacement (seeded; every image when N <= samples)."""
    n, d = mean.shape
    if log_var.shape != (n, d) or eps.shape != (n, d):
        raise InputError(
            f"expected mean, log_var and eps of one shape [N,D], got {list(mean.shape)}, "
            f"{list(log_var.shape)} and {list(eps.shape)}"
        )
    chosen = np.arange(n) if n <= samples else np.sort(np.random.default_rng(seed).choice(n, samples, replace=False))
    mean, log_var = mean.astype(np.float64), log_var.astype(np.float64)
    z = mean[chosen] + np.exp(0.5 * log_var[chosen]) * eps[chosen]
    joint = mixture_log_density(z, mean, log_var)
    marginals = sum(mixture_log_density(z[:, [j]], mean[:, [j]], log_var[:, [j]]) for j in range(d))
    return float((joint - marginals).mean())


def latent_correlation(means: np.ndarray) -> np.ndarray:
    """The (D, D) correlation matrix of posterior means (N, D). An inactive dimension (its means
    vary by at most ACTIVE_UNIT_THRESHOLD: what is left is numerical noise, whose correlations mean
    nothing) correlates with nothing: 0 off the diagonal, 1 on it."""
    centred = means.astype(np.float64) - means.mean(axis=0)
    variance = (centred**2).mean(axis=0)
    live = variance > ACTIVE_UNIT_THRESHOLD
    unit = np.zeros_like(centred)
    unit[:, live] = centred[:, live] / np.sqrt(variance[live])
    corr = unit.T @ unit / len(means)
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def mean_abs_correlation(corr: np.ndarray, active: np.ndarray) -> float:
    """The mean |correlation| over distinct pairs of the `active` dimensions (a boolean mask; 0 with
    fewer than two)."""
    d = int(np.count_nonzero(active))
    if d < 2:
        return 0.0
    part = corr[np.ix_(active, active)]
    return float(np.abs(part[~np.eye(d, dtype=bool)]).mean())
