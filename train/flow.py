"""A learned prior p(z): a RealNVP flow (Dinh et al. 2017) over the latent, z = f(u), u ~ N(0, I).

Each layer is an affine coupling: a fixed, seeded half of the dimensions passes unchanged and
conditions a scale and a shift of the other half,

    z_b = u_b * exp(s(u_a)) + t(u_a),   s = B * tanh(raw / B)   (scales bounded to e^-B..e^B),

so the inverse and the log-determinant are exact and cheap: u_b = (z_b - t(z_a)) * exp(-s(z_a)),
log|det dz/du| = sum s. The layers' halves are drawn from a seeded generator (fixed
permutations); the last layer of each coupling network starts at zero, so a new flow is the
identity and the VAE starts from the N(0, I) prior. Xu et al. (2019) found such a prior worth
2-3 nats over N(0, I) on MNIST.

`sample(eps, temperature)` is the graph `prior_sample` exports; `log_prob(z)` is `prior_log_prob`.
"""

from __future__ import annotations

import torch
from torch import nn

from vaeport.train.distributions import LOG_2PI

SCALE_BOUND = 2.0  # |s| <= 2: each layer scales a dimension by at most e^2 either way
MASK_SEED = 1234  # the layers' halves (a fixed part of the architecture, not of the run's seed)


def coupling_masks(dim: int, layers: int) -> torch.Tensor:
    """(layers, dim) 0/1 masks, each marking a seeded half of the dimensions (the ones that pass
    unchanged), alternating with its complement so every dimension is transformed."""
    generator = torch.Generator().manual_seed(MASK_SEED)
    masks = []
    for i in range(layers):
        if i % 2 == 0:
            half = torch.zeros(dim)
            half[torch.randperm(dim, generator=generator)[: dim // 2]] = 1.0
        else:
            half = 1.0 - masks[-1]
        masks.append(half)
    return torch.stack(masks)


class AffineCoupling(nn.Module):
    """One coupling layer; `mask` marks the dimensions that pass unchanged."""

    def __init__(self, mask: torch.Tensor, hidden: int) -> None:
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask.clone())
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2 * dim)
        )
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity: z = u
        nn.init.zeros_(self.net[-1].bias)

    def scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, t) for the transformed dimensions (zero on the kept ones)."""
        raw_s, t = self.net(kept).chunk(2, dim=-1)
        free = 1.0 - self.mask
        return SCALE_BOUND * torch.tanh(raw_s / SCALE_BOUND) * free, t * free

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log|det dz/du|) for u (..., D)."""
        kept = u * self.mask
        s, t = self.scale_shift(kept)
        return kept + (1.0 - self.mask) * (u * torch.exp(s) + t), s.sum(-1)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, log|det du/dz|) for z (..., D)."""
        kept = z * self.mask
        s, t = self.scale_shift(kept)
        return kept + (1.0 - self.mask) * ((z - t) * torch.exp(-s)), -s.sum(-1)


class FlowPrior(nn.Module):
    """p(z) = the density of z = f(u), u ~ N(0, I), f a stack of affine couplings."""

    name = "flow"

    def __init__(self, dim: int, layers: int, hidden: int) -> None:
        super().__init__()
        self.dim = dim
        self.couplings = nn.ModuleList(AffineCoupling(mask, hidden) for mask in coupling_masks(dim, layers))

    def forward_with_log_det(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z = f(eps), log|det df/deps|) for eps (..., D)."""
        z, log_det = self.couplings[0](eps)  # no zeros to start from: Expand has no opset-13 form here
        for coupling in self.couplings[1:]:
            z, step = coupling(z)
            log_det = log_det + step
        return z, log_det

    def sample(self, eps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """z = f(temperature * eps): the runtime's seeded noise in, latents out."""
        return self.forward_with_log_det(eps if temperature == 1.0 else eps * temperature)[0]

    def inverse_with_log_det(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f^-1(z), log|det df^-1/dz|) for z (..., D)."""
        backwards = list(reversed(self.couplings))
        u, log_det = backwards[0].inverse(z)
        for coupling in backwards[1:]:
            u, step = coupling.inverse(u)
            log_det = log_det + step
        return u, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """f^-1(z): the noise that gives z."""
        return self.inverse_with_log_det(z)[0]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = log N(f^-1(z); 0, I) + log|det df^-1/dz|, summed over the last axis."""
        u, log_det = self.inverse_with_log_det(z)
        return -0.5 * (u.pow(2) + LOG_2PI).sum(-1) + log_det
