"""Small building blocks shared by the MLP and conv architectures."""

from __future__ import annotations

import torch
from torch import nn

from vaeport.runtime.errors import InputError

# Keeps exp(0.5 * log_var) in [3.4e-4, 55]: wide enough for any posterior a VAE on images learns,
# narrow enough that exp() and the KL never overflow in float16 variants or early training.
LOG_VAR_MIN, LOG_VAR_MAX = -16.0, 8.0


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    return nn.SiLU()


def clamp_log_var(log_var: torch.Tensor) -> torch.Tensor:
    return log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)


class GaussianHead(nn.Module):
    """h -> (mean, log_var) from one Linear of width 2D (one matmul instead of two); AE: (z,)."""

    def __init__(self, width: int, latent_dim: int, variational: bool) -> None:
        super().__init__()
        self.variational = variational
        self.linear = nn.Linear(width, 2 * latent_dim if variational else latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.linear(h)
        if not self.variational:
            return (out,)
        mean, log_var = out.chunk(2, dim=1)
        return mean, clamp_log_var(log_var)


class ClassBias(nn.Module):
    """A learned vector per class added to a layer's output (N, width) or (N, width, H, W).

    The same as concatenating a one-hot label to that layer's input (the one-hot selects one
    column of the weights), without the zeros: in ONNX it is one Gather on int64 labels. Starts at
    zero, so a conditional model starts as its unconditional twin and learns what the label adds.
    """

    def __init__(self, classes: int, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(classes, width))

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bias = nn.functional.embedding(y, self.weight)  # (N, width): one Gather in ONNX
        return h + bias.reshape(*bias.shape, *([1] * (h.dim() - 2)))


WEIGHTED = (nn.Linear, nn.Conv2d)


def weighted_widths(*modules: nn.Module) -> list[int]:
    """Output widths of the Linear and Conv2d layers of `modules`, in order."""
    return [
        m.out_features if isinstance(m, nn.Linear) else m.out_channels
        for module in modules
        for m in module.modules()
        if isinstance(m, WEIGHTED)
    ]


def class_biases(classes: int, widths: list[int]) -> nn.ModuleList | None:
    """One ClassBias per weighted layer of a conditional network (None when unconditional)."""
    return nn.ModuleList(ClassBias(classes, w) for w in widths) if classes else None


class Labelled:
    """One forward pass's label: `after(h)` adds the next layer's class bias (identity when the
    model is unconditional). The label enters after every Linear and Conv2d, in forward order;
    on Fashion-MNIST that gave a slightly better likelihood bound and Frechet distance than the
    textbook one-hot input to the first layers only (models/recipes.json has the figures)."""

    def __init__(self, biases: nn.ModuleList | None, y: torch.Tensor | None) -> None:
        if biases is not None and y is None:
            raise InputError("expected labels y for a conditional model, got None")
        self.biases, self.y, self.next = biases, y, 0

    def after(self, h: torch.Tensor) -> torch.Tensor:
        if self.biases is None:
            return h
        bias = self.biases[self.next]
        self.next += 1
        return bias(h, self.y)

    def through(self, body: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """body(h) with the class bias after each of its weighted layers."""
        if self.biases is None:
            return body(h)
        for layer in body:
            h = layer(h)
            if isinstance(layer, WEIGHTED):
                h = self.after(h)
        return h
