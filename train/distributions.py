"""The latent distributions of training, in torch: each defined once (runtime/distributions.py is
the numpy twin that the runtime samples and scores with).

- `DiagonalGaussian`: the VAE posterior q(z|x) (Kingma & Welling 2014); `sample(eps)` is the
  reparameterization z = mean + exp(0.5 * log_var) * eps, differentiable in mean and log_var.
- `PointMass`: the plain autoencoder's code.
- `StandardNormal`: the prior N(0, I), the first prior; a prior maps noise to latents and has a
  log-density, so the losses, the evaluation and the export treat every prior alike.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)


class DiagonalGaussian:
    """N(mean, diag(exp(log_var))) per row; mean and log_var are (N, D)."""

    def __init__(self, mean: torch.Tensor, log_var: torch.Tensor) -> None:
        self.mean, self.log_var = mean, log_var

    def sample(self, eps: torch.Tensor) -> torch.Tensor:
        """z = mean + sigma * eps for eps (N, D) or (k, N, D)."""
        return self.mean + torch.exp(0.5 * self.log_var) * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) summed over the last axis."""
        return -0.5 * ((z - self.mean).pow(2) / self.log_var.exp() + self.log_var + LOG_2PI).sum(-1)

    def detached(self) -> DiagonalGaussian:
        """The same distribution with its parameters held constant (DReG's log q)."""
        return DiagonalGaussian(self.mean.detach(), self.log_var.detach())

    def kl_per_dimension(self) -> torch.Tensor:
        """KL(q || N(0, I)) of each latent dimension (N, D), in closed form (Kingma & Welling 2014,
        appendix B): 0.5 * (mean^2 + exp(log_var) - 1 - log_var)."""
        return 0.5 * (self.mean.pow(2) + self.log_var.exp() - 1.0 - self.log_var)

    def kl(self, prior: nn.Module, z: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q || prior) per row (N,): in closed form for N(0, I), else the one-sample estimate
        log q(z) - log p(z) at the posterior sample `z` (a learned prior has no closed form)."""
        if isinstance(prior, StandardNormal):
            return self.kl_per_dimension().sum(-1)
        if z is None:
            raise ValueError(f"the {prior.name} prior's KL is estimated at a posterior sample: pass z")
        return self.log_prob(z) - prior.log_prob(z)


class PointMass:
    """The plain autoencoder's deterministic code: sampling returns it."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value

    def sample(self, eps: torch.Tensor | None = None) -> torch.Tensor:
        return self.value

    def mode(self) -> torch.Tensor:
        return self.value


Posterior = DiagonalGaussian | PointMass


def posterior(mean: torch.Tensor, log_var: torch.Tensor | None) -> Posterior:
    return PointMass(mean) if log_var is None else DiagonalGaussian(mean, log_var)


class StandardNormal(nn.Module):
    """p(z) = N(0, I). A module (with no parameters) so that a learned prior can take its place
    in the VAE and in its state dict."""

    name = "normal"

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def sample(self, eps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return eps if temperature == 1.0 else eps * temperature

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """The noise that gives z: z itself."""
        return z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) summed over the last axis."""
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


