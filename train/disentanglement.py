"""Disentanglement metrics against a data set's ground-truth factors, as google-research's
disentanglement_lib defines them (numpy and scikit-learn; no torch, so they run on the ONNX path):

- MIG (Chen et al. 2018): per factor, the gap between the two latent dimensions sharing the most
  information with it, over the factor's entropy; codes discretised into 20 equal-width bins.
- FactorVAE score (Kim & Mnih 2018): fix one factor in a batch, vote for the dimension of least
  variance (relative to its variance over the data set, dimensions of std < 0.05 left out); the
  accuracy of a majority-vote classifier from dimension to factor, on held-out votes.
- beta-VAE score (Higgins et al. 2017): the mean |z1 - z2| over a batch of pairs sharing one
  factor; the held-out accuracy of a logistic regression predicting which factor.
- SAP score (Kumar et al. 2018): per factor, the gap between the two dimensions whose values alone
  best predict it (held-out accuracy of a linear SVM on that one dimension).

`codes(factors)` maps grid indices (N, F) to codes (N, D): typically the posterior means of the
rendered images (`encoder_codes`). Two differences from disentanglement_lib, made so that rescaling
a dimension changes nothing: the beta-VAE score divides each dimension by its standard deviation
over the data set before the differences (the FactorVAE score does so by definition), and SAP
standardises each dimension before its (regularised) linear SVM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vaeport.runtime.errors import InputError
from vaeport.runtime.inputs import unit_images
from vaeport.train.dsprites import FactorGrid

Codes = Callable[[np.ndarray], np.ndarray]  # grid indices (N, F) -> codes (N, D)
ENCODE_CHUNK = 4096
MIG_BINS = 20
PRUNE_STD = 0.05


@dataclass(frozen=True)
class MetricSizes:
    """How many samples each metric draws (disentanglement_lib's defaults)."""

    mig_points: int = 10_000
    variance_points: int = 10_000
    train_points: int = 10_000  # FactorVAE votes / beta-VAE and SAP training points
    eval_points: int = 5_000
    batch: int = 64

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise InputError(f"expected MetricSizes.{name} to be an integer of at least 2, got {value!r}")


def encoder_codes(encode: Callable[[np.ndarray], Any], grid: FactorGrid, size: int) -> Codes:
    """Codes of the grid's images rendered at `size`, from `encode(images float32 [N,C,H,W])`,
    which returns the posterior means (or a (means, ...) tuple), in chunks."""

    def codes(factors: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(factors), ENCODE_CHUNK):
            images = unit_images(grid.images(factors[start : start + ENCODE_CHUNK], size))
            result = encode(images)
            out.append(np.asarray(result[0] if isinstance(result, tuple) else result, dtype=np.float64))
        return np.concatenate(out)

    return codes


def discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two integer label arrays, from their joint histogram."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def discretize(codes: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """Each dimension into `bins` equal-width bins over its range (disentanglement_lib's histogram)."""
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins)[1][:-1]
        out[:, d] = np.digitize(codes[:, d], edges)
    return out


def mig(codes: Codes, grid: FactorGrid, rng: np.random.Generator, sizes: MetricSizes) -> dict[str, Any]:
    factors = grid.sample_factors(sizes.mig_points, rng)
    binned = discretize(codes(factors))
    info = np.array(
        [
            [discrete_mutual_information(binned[:, d], factors[:, f]) for f in range(factors.shape[1])]
            for d in range(binned.shape[1])
        ]
    )  # (D, F)
    entropy = np.array([discrete_mutual_information(factors[:, f], factors[:, f]) for f in range(factors.shape[1])])
    top = np.sort(info, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    gaps = (top[0] - second) / entropy
    return {"mig": float(gaps.mean()), "mig_per_factor": dict(zip(grid.factor_names, map(float, gaps), strict=True))}


def fixed_factor_batches(
    grid: FactorGrid, rng: np.random.Generator, count: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` batches of `batch` grid points, each sharing one factor's value: (count, batch, F)
    indices and (count,) the shared factor of each."""
    shared = rng.integers(0, len(grid.factor_sizes), count)
    factors = grid.sample_factors(count * batch, rng).reshape(count, batch, -1)
    factors[np.arange(count), :, shared] = factors[np.arange(count), 0, shared][:, None]
    return factors, shared


def factor_vae_votes(
    codes: Codes,
    grid: FactorGrid,
    rng: np.random.Generator,
    count: int,
    batch: int,
    scale: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """(active dims, F) counts of which dimension varied least in batches sharing each factor."""
    factors, shared = fixed_factor_batches(grid, rng, count, batch)
    z = codes(factors.reshape(count * batch, -1)).reshape(count, batch, -1)[:, :, active]
    local = z.var(axis=1, ddof=1) / scale[active] ** 2
    votes = np.zeros((int(active.sum()), len(grid.factor_sizes)), dtype=np.int64)
    np.add.at(votes, (local.argmin(axis=1), shared), 1)
    return votes


def factor_vae_score(
    codes: Codes, grid: FactorGrid, rng: np.random.Generator, sizes: MetricSizes, scale: np.ndarray
) -> dict[str, Any]:
    active = scale >= PRUNE_STD
    if not active.any():
        return {"factor_vae_score": 0.0, "factor_vae_train_accuracy": 0.0, "factor_vae_active_dims": 0}
    train = factor_vae_votes(codes, grid, rng, sizes.train_points, sizes.batch, scale, active)
    held = factor_vae_votes(codes, grid, rng, sizes.eval_points, sizes.batch, scale, active)
    classifier = train.argmax(axis=1)
    rows = np.arange(len(classifier))
    return {
        "factor_vae_score": float(held[rows, classifier].sum() / held.sum()),
        "factor_vae_train_accuracy": float(train[rows, classifier].sum() / train.sum()),
        "factor_vae_active_dims": int(active.sum()),
    }


def beta_vae_points(
    codes: Codes, grid: FactorGrid, rng: np.random.Generator, count: int, batch: int, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(count, D) mean |z1 - z2| of pairs sharing one factor, and (count,) which factor."""
    first, shared = fixed_factor_batches(grid, rng, count, batch)
    second = grid.sample_factors(count * batch, rng).reshape(count, batch, -1)
    rows = np.arange(count)
    second[rows, :, shared] = first[rows, :, shared]
    both = codes(np.concatenate([first, second]).reshape(2 * count * batch, -1)).reshape(2, count, batch, -1)
    safe = np.where(scale > 0, scale, 1.0)
    return (np.abs(both[0] - both[1]) / safe).mean(axis=1), shared


def beta_vae_score(
    codes: Codes, grid: FactorGrid, rng: np.random.Generator, sizes: MetricSizes, scale: np.ndarray
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = beta_vae_points(codes, grid, rng, sizes.train_points, sizes.batch, scale)
    x_eval, y_eval = beta_vae_points(codes, grid, rng, sizes.eval_points, sizes.batch, scale)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return {
        "beta_vae_score": float(model.score(x_eval, y_eval)),
        "beta_vae_train_accuracy": float(model.score(x_train, y_train)),
    }


def sap_score(codes: Codes, grid: FactorGrid, rng: np.random.Generator, sizes: MetricSizes) -> dict[str, Any]:
    from sklearn.svm import LinearSVC

    train, held = grid.sample_factors(sizes.train_points, rng), grid.sample_factors(sizes.eval_points, rng)
    z_train, z_held = codes(train), codes(held)
    centre, spread = z_train.mean(axis=0), z_train.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)  # standardised, so rescaling a dimension changes nothing
    z_train, z_held = (z_train - centre) / spread, (z_held - centre) / spread
    scores = np.zeros((z_train.shape[1], train.shape[1]))  # (D, F): accuracy of dimension d alone on factor f
    for d in range(z_train.shape[1]):
        if np.ptp(z_train[:, d]) == 0:
            continue  # a constant dimension predicts nothing
        for f in range(train.shape[1]):
            classifier = LinearSVC(C=0.01, class_weight="balanced").fit(z_train[:, [d]], train[:, f])
            scores[d, f] = float((classifier.predict(z_held[:, [d]]) == held[:, f]).mean())
    top = np.sort(scores, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    return {"sap_score": float((top[0] - second).mean())}


def disentanglement(codes: Codes, grid: FactorGrid, seed: int = 0, sizes: MetricSizes | None = None) -> dict[str, Any]:
    """MIG, FactorVAE, beta-VAE and SAP scores of `codes` on `grid`; each metric draws from its own
    seeded stream, so the same seed gives the same samples whatever else runs."""
    sizes = sizes or MetricSizes()
    scale = codes(grid.sample_factors(sizes.variance_points, np.random.default_rng([seed, 0]))).std(axis=0)
    result: dict[str, Any] = {"factors": grid.name, "metric_seed": seed, "metric_sizes": dict(sizes.__dict__)}
    result.update(mig(codes, grid, np.random.default_rng([seed, 1]), sizes))
    result.update(factor_vae_score(codes, grid, np.random.default_rng([seed, 2]), sizes, scale))
    result.update(beta_vae_score(codes, grid, np.random.default_rng([seed, 3]), sizes, scale))
    result.update(sap_score(codes, grid, np.random.default_rng([seed, 4]), sizes))
    result["latent_std"] = [round(float(s), 5) for s in scale]
    return result
