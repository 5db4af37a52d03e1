"""Convolutional encoder (strided 3x3 convs) and decoder (nearest upsample + 3x3 conv).

Works for any C x H x W: the encoder halves the spatial size (rounding up) until both sides are
at most 7, and the decoder upsamples back to exactly the sizes the encoder went through.
Upsample + conv instead of ConvTranspose because ONNX Runtime runs it several times faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaeport.train.config import ModelConfig
from vaeport.train.layers import GaussianHead, activation

MAX_BOTTOM_SIDE = 7


def stage_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sizes from the input down to the bottom, e.g. 28x28 -> [(28,28), (14,14), (7,7)]."""
    sizes = [(height, width)]
    while len(sizes) == 1 or max(sizes[-1]) > MAX_BOTTOM_SIDE:
        h, w = sizes[-1]
        if h == 1 and w == 1:
            break
        sizes.append(((h + 1) // 2, (w + 1) // 2))  # what Conv2d(k=3, s=2, p=1) gives
    return sizes


def stage_channels(config: ModelConfig, stages: int) -> list[int]:
    """Channels of each stage: `hidden`, its last entry repeated when more stages are needed."""
    return [config.hidden[min(i, len(config.hidden) - 1)] for i in range(stages)]


class ConvEncoder(nn.Module):
    """x (N, C, H, W) -> (z_mean (N, D), z_log_var (N, D)); the AE variant returns (z,)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        sizes = stage_sizes(h, w)
        channels = stage_channels(config, len(sizes) - 1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation(config.activation)]
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        bottom = channels[-1] * sizes[-1][0] * sizes[-1][1]
        self.head = GaussianHead(bottom, config.latent_dim, variational=config.kind == "vae")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.body(x)  # (N, C_last * h_last * w_last)
        return self.head(h)


class ConvDecoder(nn.Module):
    """z (N, D) -> logits (N, C, H, W), mirroring the encoder's stages."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        self.sizes = stage_sizes(h, w)
        channels = stage_channels(config, len(self.sizes) - 1)
        self.bottom = (channels[-1], *self.sizes[-1])
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim, channels[-1] * self.sizes[-1][0] * self.sizes[-1][1]),
            activation(config.activation),
        )
        outs = [*reversed(channels[:-1]), c]  # each stage maps to the next shallower width
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, padding=1) for c_in, c_out in zip(reversed(channels), outs, strict=True)
        )
        self.act = activation(config.activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).reshape(-1, *self.bottom)  # (N, C_last, h_last, w_last)
        targets = list(reversed(self.sizes[:-1]))
        for i, (conv, size) in enumerate(zip(self.convs, targets, strict=True)):
            h = conv(F.interpolate(h, size=size, mode="nearest"))
            if i < len(self.convs) - 1:
                h = self.act(h)
        return h
