"""Fully connected encoder and decoder (the classic 784-400-20 VAE when hidden=(400,))."""

from __future__ import annotations

import math

import torch
from torch import nn

from vaeport.train.config import ModelConfig
from vaeport.train.layers import GaussianHead, Labelled, activation, class_biases, weighted_widths


class MLPEncoder(nn.Module):
    """x (N, C, H, W) [, y (N,)] -> (z_mean (N, D), z_log_var (N, D)); the AE variant returns (z,).
    A conditional model adds its label's vector to every hidden layer's output."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(config.image_shape)
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), activation(config.activation)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = GaussianHead(width, config.latent_dim, variational=config.kind == "vae")
        self.labels = class_biases(config.num_classes, weighted_widths(self.body))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        h = Labelled(self.labels, y).through(self.body, x)
        return self.head(h)


class MLPDecoder(nn.Module):
    """z (N, D) [, y (N,)] -> logits (N, C, H, W); hidden widths mirror the encoder's. A
    conditional model adds its label's vector to every layer's output (the logits too)."""

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
        self.labels = class_biases(config.num_classes, weighted_widths(self.body))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return Labelled(self.labels, y).through(self.body, z).reshape(-1, *self.image_shape)
