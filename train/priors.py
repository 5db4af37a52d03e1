"""The priors training can learn with, by the name TrainConfig.prior and the manifest's model.prior
use (runtime/distributions.py has their runtime classes)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vaeport.train.config import ModelConfig
from vaeport.train.distributions import StandardNormal
from vaeport.train.flow import FlowPrior

PRIORS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "normal": lambda config: StandardNormal(config.latent_dim),
    "flow": lambda config: FlowPrior(config.latent_dim, config.flow_layers, config.flow_hidden),
}


def build_prior(config: ModelConfig) -> nn.Module:
    """p(z) of a new model (a module, so that a learned prior trains and saves with it)."""
    return PRIORS[config.prior](config)
