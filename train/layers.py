"""Small building blocks shared by the MLP and conv architectures."""

from __future__ import annotations

import torch
from torch import nn

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
