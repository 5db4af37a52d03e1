"""The latent distributions of the runtime, in numpy: each defined once, used by sampling,
reconstruction, evaluation and scoring alike (train/distributions.py is the torch twin).

- `DiagonalGaussian`: a VAE's posterior q(z|x) = N(mean, diag(exp(log_var))).
- `PointMass`: a plain autoencoder's deterministic code (no density, no KL).
- `StandardNormal`: the prior N(0, I), the first `Prior`. A prior turns the runtime's seeded noise
  into latents; the noise stream is the only randomness, so image i depends only on (seed, i)
  whatever the prior (exact shards, byte-identical resume).
- `FlowPrior`: a learned prior z = f(eps) (train/flow.py), run through its three graphs,
  `prior_sample` (eps -> z), `prior_log_prob` (z -> log p(z)) and `prior_inverse` (z -> eps).

Log-densities and KLs are float64; samples are float32 (what the graphs take).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from vaeport.runtime.errors import InputError, ModelFolderError
from vaeport.runtime.sampling import prior_latents

LOG_2PI = math.log(2.0 * math.pi)


class DiagonalGaussian:
    """N(mean, diag(exp(log_var))) per row; mean and log_var are [N, D]."""

    def __init__(self, mean: np.ndarray, log_var: np.ndarray) -> None:
        self.mean, self.log_var = mean, log_var

    def sample(self, eps: np.ndarray) -> np.ndarray:
        """z = mean + exp(0.5 * log_var) * eps (Kingma & Welling's reparameterization), float32;
        eps is [N, D] or [k, N, D] for k samples per row."""
        return (self.mean + np.exp(0.5 * self.log_var) * eps).astype(np.float32, copy=False)

    def mode(self) -> np.ndarray:
        return self.mean

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log q(z) summed over the last axis, float64 ([N] or [k, N])."""
        z, mean, log_var = (a.astype(np.float64) for a in (z, self.mean, self.log_var))
        return -0.5 * ((z - mean) ** 2 / np.exp(log_var) + log_var + LOG_2PI).sum(-1)

    def kl(self, prior: Prior) -> np.ndarray:
        """KL(q || prior) per row and latent dimension [N, D], in closed form (appendix B of
        Kingma & Welling 2014) against N(0, I)."""
        if not isinstance(prior, StandardNormal):
            raise NotImplementedError(f"no closed-form KL to the {prior.name} prior")
        mean, log_var = self.mean.astype(np.float64), self.log_var.astype(np.float64)
        return 0.5 * (mean**2 + np.exp(log_var) - 1.0 - log_var)


class PointMass:
    """A deterministic code (the plain autoencoder): sampling returns it, it has no density."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    def sample(self, eps: np.ndarray | None = None) -> np.ndarray:
        return self.value

    def mode(self) -> np.ndarray:
        return self.value


Posterior = DiagonalGaussian | PointMass


def posterior(mean: np.ndarray, log_var: np.ndarray | None) -> Posterior:
    """The posterior an encoder's outputs describe: Gaussian with a log-variance, else a point."""
    return PointMass(mean) if log_var is None else DiagonalGaussian(mean, log_var)


class Prior(Protocol):
    """What the runtime needs of p(z): the noise for samples start..start+count-1, the latents
    that noise gives at a temperature, and the log-density."""

    name: str
    dim: int

    def noise(self, seed: int, start: int, count: int) -> np.ndarray: ...

    def sample(self, eps: np.ndarray, temperature: float = 1.0) -> np.ndarray: ...

    def log_prob(self, z: np.ndarray) -> np.ndarray: ...

    def inverse(self, z: np.ndarray) -> np.ndarray: ...


class StandardNormal:
    """p(z) = N(0, I): z = temperature * eps."""

    name = "normal"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def noise(self, seed: int, start: int, count: int) -> np.ndarray:
        """eps [count, D] of samples start..start+count-1 of the seeded stream (runtime/sampling.py)."""
        return prior_latents(seed, start, count, self.dim)

    def sample(self, eps: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        return eps if temperature == 1.0 else (eps * np.float32(temperature)).astype(np.float32, copy=False)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """The noise that gives z (at temperature 1): z itself."""
        return z

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log N(z; 0, I) summed over the last axis, float64."""
        return -0.5 * (z.astype(np.float64) ** 2 + LOG_2PI).sum(-1)


class FlowPrior:
    """p(z) with z = f(eps), eps ~ N(0, I), f a flow exported as three graphs (`graphs` maps role ->
    a runner taking the role's inputs as arrays and returning its outputs). The noise is the
    standard normal stream; `temperature` scales eps before the flow."""

    name = "flow"
    FD_STEP = 1e-2  # central differences of prior_sample, for the consistency check
    FD_TOLERANCE = 0.05  # nats: float32 finite differences are good to ~1e-3 here; a wrong graph is off by many

    def __init__(self, dim: int, graphs: dict[str, Any]) -> None:
        self.dim = dim
        self._sample, self._log_prob = graphs["prior_sample"], graphs["prior_log_prob"]
        self._inverse = graphs["prior_inverse"]
        self._normal = StandardNormal(dim)

    def noise(self, seed: int, start: int, count: int) -> np.ndarray:
        return self._normal.noise(seed, start, count)

    def sample(self, eps: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """f(temperature * eps) for eps [N, D] (or [k, N, D]), float32."""
        scaled = self._normal.sample(np.asarray(eps, dtype=np.float32), temperature)
        flat = scaled.reshape(-1, self.dim)
        return self._sample(flat)[0].reshape(scaled.shape).astype(np.float32, copy=False)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z) over the last axis, float64 ([N] or [k, N])."""
        flat = np.ascontiguousarray(z, dtype=np.float32).reshape(-1, self.dim)
        return self._log_prob(flat)[0].astype(np.float64).reshape(z.shape[:-1])

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """f^-1(z) for z [N, D]: the noise (at temperature 1) that gives it."""
        return self._inverse(np.ascontiguousarray(z, dtype=np.float32))[0]

    def roundtrip_gap(self, seed: int = 0, rows: int = 4) -> float:
        """The largest |f^-1(f(eps)) - eps| over a few seeded eps: prior_inverse must undo prior_sample."""
        eps = np.random.default_rng([seed, 8]).standard_normal((rows, self.dim)).astype(np.float32)
        return float(np.max(np.abs(self.inverse(self.sample(eps)) - eps)))

    def consistency_gap(self, seed: int = 0, rows: int = 4) -> float:
        """The largest |log p(f(eps)) - (log N(eps) - log|det df/deps|)| over a few seeded eps, with
        the Jacobian from central differences of prior_sample: a prior_log_prob that is not the
        density of prior_sample (a graph replaced by hand) is off by many nats."""
        eps = np.random.default_rng([seed, 7]).standard_normal((rows, self.dim)).astype(np.float64)
        steps = np.eye(self.dim) * self.FD_STEP
        around = np.concatenate([eps[:, None, :] + steps, eps[:, None, :] - steps], axis=1)  # [rows, 2D, D]
        out = self.sample(around.reshape(-1, self.dim).astype(np.float32)).astype(np.float64)
        out = out.reshape(rows, 2, self.dim, self.dim)
        jacobian = (out[:, 0] - out[:, 1]).transpose(0, 2, 1) / (2 * self.FD_STEP)  # [rows, D(out), D(in)]
        log_det = np.linalg.slogdet(jacobian)[1]
        expected = self._normal.log_prob(eps) - log_det
        got = self.log_prob(self.sample(eps.astype(np.float32)))
        return float(np.max(np.abs(got - expected)))


PRIORS: dict[str, Any] = {"normal": StandardNormal, "flow": FlowPrior}  # model.prior -> its runtime class
DEFAULT_PRIOR = "normal"  # what every folder without a model.prior was trained with


def make_prior(name: str, dim: int, graphs: dict[str, Any] | None = None) -> Prior:
    """The runtime prior called `name` over D = dim latents (a learned one runs its `graphs`)."""
    if name not in PRIORS:
        raise ModelFolderError(f"expected model.prior to be one of {', '.join(PRIORS)}, got {name!r}")
    return StandardNormal(dim) if name == "normal" else PRIORS[name](dim, graphs or {})


def kl_to_prior(q: DiagonalGaussian, prior: Prior, z: np.ndarray) -> np.ndarray:
    """KL(q || prior) per row: in closed form for N(0, I), else the one-sample estimate
    log q(z) - log p(z) at the posterior sample z (what the ELBO's reconstruction term also uses)."""
    if isinstance(prior, StandardNormal):
        return q.kl(prior).sum(-1)
    return q.log_prob(z) - prior.log_prob(z)


def check_temperature(temperature: object) -> float:
    number = isinstance(temperature, (int, float, np.floating, np.integer)) and not isinstance(temperature, bool)
    if not (number and np.isfinite(temperature) and temperature >= 0):  # type: ignore[arg-type]
        raise InputError(f"expected temperature to be a finite number >= 0, got {temperature!r}")
    return float(temperature)  # type: ignore[arg-type]
