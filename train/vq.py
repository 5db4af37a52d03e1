"""The vector quantizer of a VQ-VAE (van den Oord et al. 2017), with the codebook learned by
exponential moving averages (their appendix; sonnet's VectorQuantizerEMA) instead of a loss.

- Distances are written as matrix products, |z|^2 - 2 z.E^T + |E|^2, and the code is their argmin:
  both export to ONNX (MatMul, ArgMin), unlike `torch.cdist`.
- The gradient passes straight through the quantization: the decoder's input is
  z_e + (z_q - z_e).detach(); the encoder is pulled toward its codes by the commitment loss
  beta * |z_e - sg(z_q)|^2.
- Codes that go unused (their moving count below `dead_below` vectors per step; Jukebox's rule)
  restart at encoder outputs of the current batch, drawn with the caller's generator, so a resumed
  run restarts the same codes as an uninterrupted one. Every code starts with a count of 1, so
  the ones the first batches do not use start over on encoder outputs: a data-driven
  initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaeport.runtime.errors import InputError

DECAY = 0.99
EPSILON = 1e-5  # Laplace smoothing of the moving counts: no code's centre divides by zero


@dataclass
class Quantized:
    """What the quantizer gives for a batch of encoder outputs (N, D, h, w)."""

    z_q: torch.Tensor  # (N, D, h, w): the codes' vectors, with straight-through gradients to z_e
    codes: torch.Tensor  # (N, h, w) int64
    commitment: torch.Tensor  # scalar: mean over elements of |z_e - sg(z_q)|^2
    perplexity: torch.Tensor  # scalar: exp(entropy of the batch's code frequencies)


class VectorQuantizerEMA(nn.Module):
    """K codes of dimension D, their centres the moving averages of the encoder outputs assigned
    to them."""

    def __init__(self, num_codes: int, dim: int, decay: float = DECAY, dead_below: float = 1.0) -> None:
        super().__init__()
        if isinstance(num_codes, bool) or not isinstance(num_codes, int) or num_codes < 2:
            raise InputError(f"expected a codebook of at least 2 codes, got {num_codes!r}")
        if not 0.0 < decay < 1.0:
            raise InputError(f"expected the codebook's moving-average decay in (0, 1), got {decay!r}")
        self.num_codes, self.dim, self.decay, self.dead_below = num_codes, dim, decay, dead_below
        init = torch.randn(num_codes, dim) / dim**0.5
        self.register_buffer("codebook", init.clone())
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("code_sum", init.clone())

    def distances(self, flat: torch.Tensor) -> torch.Tensor:
        """Squared distances (M, K) of vectors (M, D) to every code, as matrix products."""
        return (flat * flat).sum(1, keepdim=True) - 2.0 * flat @ self.codebook.t() + (self.codebook**2).sum(1)

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """The code (N, h, w) int64 nearest to each vector of z_e (N, D, h, w)."""
        n, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        return torch.argmin(self.distances(flat), dim=1).reshape(n, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """The vectors (N, D, h, w) of codes (N, h, w)."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor, generator: torch.Generator | None = None) -> Quantized:
        codes = self.nearest(z_e)
        if self.training:
            self.update(z_e.detach(), codes, generator)
        z_q = self.lookup(codes)
        commitment = ((z_e - z_q.detach()) ** 2).mean()
        counts = torch.bincount(codes.reshape(-1), minlength=self.num_codes).to(z_e.dtype)
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        return Quantized(z_e + (z_q - z_e).detach(), codes, commitment, perplexity)

    @torch.no_grad()
    def update(self, z_e: torch.Tensor, codes: torch.Tensor, generator: torch.Generator | None) -> None:
        """One moving-average step of the counts and centres, then restarts of dead codes."""
        d = z_e.shape[1]
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        onehot = torch.zeros(len(flat), self.num_codes, dtype=flat.dtype, device=flat.device)
        onehot.scatter_(1, codes.reshape(-1, 1), 1.0)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + EPSILON) / (total + self.num_codes * EPSILON) * total
        self.codebook.copy_(self.code_sum / smoothed.unsqueeze(1))
        self.restart_dead(flat, generator)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor, generator: torch.Generator | None) -> None:
        """Move every code whose moving count fell below `dead_below` onto a random encoder output
        of the batch, with a fresh count of 1."""
        dead = torch.nonzero(self.cluster_size < self.dead_below).flatten()
        if len(dead) == 0:
            return
        picks = torch.randint(0, len(flat), (len(dead),), generator=generator, device="cpu").to(flat.device)
        self.codebook[dead] = flat[picks]
        self.code_sum[dead] = flat[picks]
        self.cluster_size[dead] = 1.0
