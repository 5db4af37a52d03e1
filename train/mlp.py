"""Fully connected encoder and decoder (the classic 784-400-20 VAE when hidden=(400,))."""

from __future__ import annotations

import math

import torch
from torch import nn

from vaeport.train.config import ModelConfig
from vaeport.train.layers import GaussianHead, activation


class MLPEncoder(nn.Module):
    """x (N, C, H, W) -> (z_mean (N, D), z_log_var (N, D)); the AE variant returns (z,)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(config.image_shape)
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), activation(config.activation)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = GaussianHead(width, config.latent_dim, variational=config.kind == "vae")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.body(x)
        return self.head(h)


class MLPDecoder(nn.Module):
    """z (N, D) -> logits (N, C, H, W); hidden widths mirror the encoder's."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = config.latent_dim
        for hidden in reversed(config.hidden):
            layers += [nn.Linear(width, hidden), activation(config.activation)]
            width = hidden
        layers += [nn.Linear(width, math.prod(config.image_shape))]
        self.body = nn.Sequential(*layers)
        self.image_shape = config.image_shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).reshape(-1, *self.image_shape)
