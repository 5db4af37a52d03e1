"""The VAE (and its plain-autoencoder baseline): wires an Encoder and a Decoder together.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes": the encoder gives q(z|x) as a
diagonal normal (mean, log_var); z = mean + exp(0.5 * log_var) * eps with eps ~ N(0, I).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vaeport.runtime.errors import InputError
from vaeport.runtime.families import FAMILIES
from vaeport.train.config import ModelConfig
from vaeport.train.conv import ConvDecoder, ConvEncoder
from vaeport.train.distributions import DiagonalGaussian, Posterior, posterior
from vaeport.train.mlp import MLPDecoder, MLPEncoder
from vaeport.train.priors import build_prior

# Gaussian likelihood: a learned global log standard deviation (sigma-VAE), kept in a sane range.
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 2.0


def build_encoder(config: ModelConfig) -> nn.Module:
    return ConvEncoder(config) if config.arch == "conv" else MLPEncoder(config)


def build_decoder(config: ModelConfig) -> nn.Module:
    return ConvDecoder(config) if config.arch == "conv" else MLPDecoder(config)


class VAE(nn.Module):
    """Encoder + Decoder; `kind="ae"` makes it a deterministic autoencoder (no KL, no noise)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)
        self.prior = build_prior(config)  # p(z); N(0, I) has no parameters, a flow learns with the rest
        if config.likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.tensor(-1.0))
        else:
            self.register_parameter("log_scale", None)

    @property
    def variational(self) -> bool:
        """The family has a posterior with a density (runtime/families.py): the VAE, not the AE."""
        return FAMILIES[self.config.kind].variational

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def labels(self, y: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """The extra graph input: (y,) for a conditional model, () otherwise; refuses a mismatch."""
        if self.conditional != (y is not None):
            want = "labels y (a conditional model)" if self.conditional else "no labels (an unconditional model)"
            raise InputError(f"expected {want}, got {'none' if y is None else 'labels'}")
        return () if y is None else (y,)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log_var) of q(z|x[,y]); log_var is None for the plain autoencoder."""
        out = self.encoder(x, *self.labels(y))
        return (out[0], out[1]) if self.variational else (out[0], None)

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """q(z|x[,y]) as a distribution (train/distributions.py)."""
        return posterior(*self.encode(x, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder logits (N, C, H, W) of p(x|z[,y]); sigmoid(logits) is the image (Bernoulli p or
        Gaussian mean)."""
        return self.decoder(z, *self.labels(y))

    def scale(self) -> torch.Tensor | None:
        """Gaussian likelihood: the standard deviation sigma; None for Bernoulli."""
        if self.log_scale is None:
            return None
        return self.log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp()

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        eps: torch.Tensor | None = None,
        z_hook: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(logits, mean, log_var) for posterior samples z = mean + sigma * eps.

        y (N,) are the labels of a conditional model. eps (N, D) gives one sample per image,
        (k, N, D) gives k (logits then (k*N, C, H, W));
        when eps is None one sample is drawn from `generator`. `z_hook` is registered as a
        gradient hook on z (DReG reweights the gradient that reaches each sample).
        """
        mean, log_var = self.encode(x, y)
        q = posterior(mean, log_var)
        if isinstance(q, DiagonalGaussian):
            if eps is None:
                eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = q.sample(eps)
            if z_hook is not None and z.requires_grad:
                z.register_hook(z_hook)
        else:
            z = q.mode()  # a plain autoencoder's code: no noise
        if y is not None and z.dim() == 3:
            y = y.repeat(z.shape[0])  # sample j of image i is row j * N + i
        return self.decode(z.reshape(-1, z.shape[-1]), y), mean, log_var


class DecoderImage(nn.Module):
    """What decoder.onnx computes: z [, y] -> sigmoid(logits), the image in [0, 1]."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z) if y is None else self.decoder(z, y))
