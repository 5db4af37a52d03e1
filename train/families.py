"""The torch side of the model families (runtime/families.py has the runtime side): for each
`model.kind`, how its model is built, the module each graph role is exported from and the example
inputs it is traced with.

The exporter and the parity gate loop over these; input and output names come from the runtime
family's role, so the two sides cannot disagree about a graph's interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vaeport.runtime.errors import InputError
from vaeport.runtime.families import Shapes
from vaeport.train.config import ModelConfig
from vaeport.train.vae import VAE, DecoderImage
from vaeport.train.vqvae import VQVAE, CodesDecoder, CodesEncoder, ConditionalStepPrior, GridPrior, StepPrior

EXAMPLE_BATCH = 2  # export with a batch of 2 so that the batch axis cannot be specialized to 1


@dataclass(frozen=True)
class TorchRole:
    """What one graph computes in torch, and example inputs to trace it with (in input order)."""

    module: Callable[[VAE], nn.Module]
    examples: Callable[[VAE], tuple[torch.Tensor, ...]]


def example_labels(model: VAE) -> tuple[torch.Tensor, ...]:
    """A conditional model's label input (int64 class indices [N]), or nothing."""
    if not model.conditional:
        return ()
    return (torch.arange(EXAMPLE_BATCH, dtype=torch.int64) % model.config.num_classes,)


def example_images(model: VAE) -> tuple[torch.Tensor, ...]:
    image = torch.rand(EXAMPLE_BATCH, *model.config.image_shape, generator=torch.Generator().manual_seed(0))
    return (image, *example_labels(model))


def example_latents(model: VAE) -> tuple[torch.Tensor, ...]:
    z = torch.randn(EXAMPLE_BATCH, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    return (z, *example_labels(model))


class PriorGraph(nn.Module):
    """What a prior graph computes: one method of the prior on [N, D] (prior_sample: `sample`,
    eps -> z, the runtime scaling eps by the temperature; prior_log_prob: `log_prob`, z -> log p(z);
    prior_inverse: `inverse`, z -> eps)."""

    def __init__(self, prior: nn.Module, method: str) -> None:
        super().__init__()
        self.prior, self.method = prior, method

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return getattr(self.prior, self.method)(value)


def example_noise(model: VAE) -> tuple[torch.Tensor, ...]:
    return (torch.randn(EXAMPLE_BATCH, model.config.latent_dim, generator=torch.Generator().manual_seed(1)),)


ENCODER = TorchRole(lambda model: model.encoder, example_images)
DECODER = TorchRole(lambda model: DecoderImage(model.decoder), example_latents)
# a learned prior's graphs (runtime/families.py's PRIOR_ROLES), whatever the family
PRIOR_TORCH_ROLES: dict[str, dict[str, TorchRole]] = {
    "normal": {},
    "flow": {
        "prior_sample": TorchRole(lambda model: PriorGraph(model.prior, "sample"), example_noise),
        "prior_log_prob": TorchRole(lambda model: PriorGraph(model.prior, "log_prob"), example_noise),
        "prior_inverse": TorchRole(lambda model: PriorGraph(model.prior, "inverse"), example_noise),
    },
}

def example_codes(model: VQVAE) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(2)
    return (torch.randint(0, model.config.codebook_size, (EXAMPLE_BATCH, *model.grid), generator=generator),)


def example_step(model: VQVAE) -> tuple[torch.Tensor, ...]:
    """A step's inputs: previous tokens, labels, a position past the start and filled buffers."""
    generator = torch.Generator().manual_seed(3)
    layers, heads, length, head_dim = model.prior.cache_shape
    token = torch.randint(0, model.config.codebook_size + 1, (EXAMPLE_BATCH,), generator=generator)
    past = [torch.randn(EXAMPLE_BATCH, heads, length, head_dim, generator=generator) for _ in range(2 * layers)]
    return (token, *example_labels(model), torch.tensor([min(3, length - 1)]), *past)


def step_prior(model: VQVAE) -> nn.Module:
    return ConditionalStepPrior(model.prior) if model.conditional else StepPrior(model.prior)


VQ_ROLES = {
    "encoder": TorchRole(lambda model: CodesEncoder(model.autoencoder), lambda model: example_images(model)[:1]),
    "decoder": TorchRole(lambda model: CodesDecoder(model.autoencoder), example_codes),
    "prior": TorchRole(lambda model: GridPrior(model.prior), lambda m: (*example_codes(m), *example_labels(m))),
    "prior_step": TorchRole(step_prior, example_step),
}


@dataclass(frozen=True)
class TorchFamily:
    """How a family's model is built from its ModelConfig, and its graph roles in export order."""

    build: Callable[[ModelConfig], nn.Module]
    roles: dict[str, TorchRole]


TORCH_FAMILIES: dict[str, TorchFamily] = {
    "vae": TorchFamily(VAE, {"encoder": ENCODER, "decoder": DECODER}),
    "ae": TorchFamily(VAE, {"encoder": ENCODER, "decoder": DECODER}),  # the same module, no posterior noise
    "vqvae": TorchFamily(VQVAE, VQ_ROLES),
}


def torch_family(kind: str) -> TorchFamily:
    if kind not in TORCH_FAMILIES:
        raise InputError(f"expected a model family of {', '.join(TORCH_FAMILIES)}, got {kind!r}")
    return TORCH_FAMILIES[kind]


def build_model(config: ModelConfig) -> nn.Module:
    """A new (untrained) model of the config's family."""
    return torch_family(config.kind).build(config)


def torch_roles(model: VAE) -> dict[str, TorchRole]:
    """The torch roles of the model (its family's, then its prior's), in the runtime's order."""
    return {**torch_family(model.config.kind).roles, **PRIOR_TORCH_ROLES[model.config.prior]}


def shapes(model: VAE) -> Shapes:
    """What the roles' I/O depends on, from the model's config."""
    if isinstance(model, VQVAE):
        return Shapes(
            tuple(model.config.image_shape),
            model.config.latent_dim,
            model.conditional,
            model.grid,
            model.config.codebook_size,
            model.prior.cache_shape,
        )
    return Shapes(tuple(model.config.image_shape), model.config.latent_dim, model.conditional)
