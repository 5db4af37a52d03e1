"""The latent distributions of the runtime, in numpy: each defined once, used by sampling,
reconstruction, evaluation and scoring alike (train/distributions.py is the torch twin).

- `DiagonalGaussian`: a VAE's posterior q(z|x) = N(mean, diag(exp(log_var))).
- `PointMass`: a plain autoencoder's deterministic code (no density, no KL).
- `StandardNormal`: the prior N(0, I), the first `Prior`. A prior turns the runtime's seeded noise
  into latents; the noise stream is the only randomness, so image i depends only on (seed, i)
  whatever the prior (exact shards, byte-identical resume).

Log-densities and KLs are float64; samples are float32 (what the graphs take).
"""

from __future__ import annotations

import math
from typing import Protocol

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

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log N(z; 0, I) summed over the last axis, float64."""
        return -0.5 * (z.astype(np.float64) ** 2 + LOG_2PI).sum(-1)


PRIORS = {"normal": StandardNormal}  # the manifest's model.prior -> its runtime class
DEFAULT_PRIOR = "normal"  # what every folder without a model.prior was trained with


def make_prior(name: str, dim: int) -> Prior:
    """The runtime prior called `name` over D = dim latents."""
    if name not in PRIORS:
        raise ModelFolderError(f"expected model.prior to be one of {', '.join(PRIORS)}, got {name!r}")
    return PRIORS[name](dim)


def check_temperature(temperature: object) -> float:
    number = isinstance(temperature, (int, float, np.floating, np.integer)) and not isinstance(temperature, bool)
    if not (number and np.isfinite(temperature) and temperature >= 0):  # type: ignore[arg-type]
        raise InputError(f"expected temperature to be a finite number >= 0, got {temperature!r}")
    return float(temperature)  # type: ignore[arg-type]
