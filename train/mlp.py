"""Fully connected encoder and decoder (the classic 784-400-20 VAE when hidden=(400,))."""

from __future__ import annotations

import math

import torch
from torch import nn

from vaeport.train.config import ModelConfig
from vaeport.train.layers import activation, clamp_log_var


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
        self.mean = nn.Linear(width, config.latent_dim)
        self.log_var = nn.Linear(width, config.latent_dim) if config.kind == "vae" else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.body(x)
        if self.log_var is None:
            return (self.mean(h),)
        return self.mean(h), clamp_log_var(self.log_var(h))


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
