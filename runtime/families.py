"""Model families, keyed by the manifest's `model.kind`: which graphs (roles) a model folder holds,
what each role's inputs and outputs are given the manifest, and what the encoder's outputs mean.

Everything that handles graphs (VAE.load, the manifest checks, the exporter, the parity gate, the
variants, the compatibility matrix, the web demo) loops over a family's roles instead of naming
two graphs. Adding a family is a `Family` entry here (plus its torch side in train/families.py);
docs/architecture.md walks through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vaeport.runtime.distributions import Posterior, posterior
from vaeport.runtime.errors import ModelFolderError
from vaeport.runtime.files import (
    CODES,
    DECODER_INPUT,
    DECODER_OUTPUT,
    ENCODER_INPUT,
    ENCODER_OUTPUTS_AE,
    ENCODER_OUTPUTS_VAE,
    LABEL_INPUT,
    LOG_PROB_OUTPUT,
    LOGITS_OUTPUT,
    NOISE_INPUT,
    POSITION_INPUT,
    PRIOR_SAMPLE_OUTPUT,
    TOKEN_INPUT,
    past_inputs,
    step_outputs,
)

IO = list[tuple[str, list[Any]]]  # (name, shape with "N" for the batch axis) per input or output


@dataclass(frozen=True)
class Shapes:
    """What a role's I/O depends on: the manifest's image shape, latent size and classes."""

    image_shape: tuple[int, int, int]
    latent_dim: int
    conditional: bool
    code_grid: tuple[int, int] = (0, 0)  # a VQ-VAE's (h, w) grid of codes
    codebook_size: int = 0  # ... its K codes
    prior_cache: tuple[int, int, int, int] = (0, 0, 0, 0)  # ... its prior's (layers, heads, h*w, head_dim)


@dataclass(frozen=True)
class Role:
    """One graph of a family: its name (the manifest's key, and the file's stem) and its I/O."""

    name: str
    io: Callable[[Shapes], tuple[IO, IO]]  # (inputs, outputs)
    # run in a one-thread session, the caller spreading row groups over the cores: for a graph whose
    # every call is small (a VQ prior's one-position step; benchmarks/vq_sampling_threads.py)
    single_threaded: bool = False


def label_input(shapes: Shapes) -> IO:
    """A conditional model's extra input: int64 class indices [N]."""
    return [(LABEL_INPUT, ["N"])] if shapes.conditional else []


def encoder_role(outputs: tuple[str, ...]) -> Role:
    def io(s: Shapes) -> tuple[IO, IO]:
        return [(ENCODER_INPUT, ["N", *s.image_shape]), *label_input(s)], [(o, ["N", s.latent_dim]) for o in outputs]

    return Role("encoder", io)


DECODER = Role(
    "decoder",
    lambda s: ([(DECODER_INPUT, ["N", s.latent_dim]), *label_input(s)], [(DECODER_OUTPUT, ["N", *s.image_shape])]),
)


def vq_encoder_io(s: Shapes) -> tuple[IO, IO]:
    return [(ENCODER_INPUT, ["N", *s.image_shape])], [(CODES, ["N", *s.code_grid])]


def vq_decoder_io(s: Shapes) -> tuple[IO, IO]:
    return [(CODES, ["N", *s.code_grid])], [(DECODER_OUTPUT, ["N", *s.image_shape])]


def vq_prior_io(s: Shapes) -> tuple[IO, IO]:
    """The whole-grid prior: logits of every position given the codes before it."""
    return [(CODES, ["N", *s.code_grid]), *label_input(s)], [(LOGITS_OUTPUT, ["N", *s.code_grid, s.codebook_size])]


def vq_prior_step_io(s: Shapes) -> tuple[IO, IO]:
    """One position of the prior with the caller's key/value buffers (train/ar_prior.py's `step`)."""
    layers, heads, length, head_dim = s.prior_cache
    past = [(name, ["N", heads, length, head_dim]) for name in past_inputs(layers)]
    inputs = [(TOKEN_INPUT, ["N"]), *label_input(s), (POSITION_INPUT, [1]), *past]
    outputs = [(LOGITS_OUTPUT, ["N", s.codebook_size]), *((n, ["N", heads, head_dim]) for n in step_outputs(layers))]
    return inputs, outputs


@dataclass(frozen=True)
class Family:
    """A model family: its roles in the order they are exported and loaded, and how the encoder's
    outputs become the posterior (a distribution of runtime/distributions.py)."""

    kind: str
    roles: tuple[Role, ...]
    variational: bool  # has a posterior with a density (KL, likelihood bounds)
    to_posterior: Callable[[list[np.ndarray]], Posterior]
    summary: str

    @property
    def bounds_likelihood(self) -> bool:
        """Whether `score` gives each image a bound on -log p(x) (`nll`, `kl`): a VAE's posterior,
        a VQ-VAE's prior over its codes; not a plain autoencoder."""
        return self.variational or self.kind == "vqvae"

    def single_threaded(self, role: str) -> bool:
        """Whether the family's graph `role` runs in a one-thread session (Role.single_threaded)."""
        return any(r.name == role and r.single_threaded for r in self.roles)

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(role.name for role in self.roles)


FAMILIES: dict[str, Family] = {
    "vae": Family(
        "vae",
        (encoder_role(ENCODER_OUTPUTS_VAE), DECODER),
        True,
        lambda out: posterior(out[0], out[1]),
        "variational autoencoder: Gaussian posterior, prior p(z)",
    ),
    "ae": Family(
        "ae",
        (encoder_role(ENCODER_OUTPUTS_AE), DECODER),
        False,
        lambda out: posterior(out[0], None),
        "plain autoencoder baseline: deterministic code, no KL",
    ),
    "vqvae": Family(
        "vqvae",
        (
            Role("encoder", vq_encoder_io),
            Role("decoder", vq_decoder_io),
            Role("prior", vq_prior_io),
            Role("prior_step", vq_prior_step_io, single_threaded=True),
        ),
        False,
        lambda out: posterior(out[0], None),  # the code grid, a point
        "VQ-VAE: a grid of codebook indices, an autoregressive prior over them",
    ),
}


# A learned prior adds its own graphs to whatever family it is the prior of.
PRIOR_ROLES: dict[str, tuple[Role, ...]] = {
    "normal": (),
    "flow": (
        Role(
            "prior_sample",
            lambda s: ([(NOISE_INPUT, ["N", s.latent_dim])], [(PRIOR_SAMPLE_OUTPUT, ["N", s.latent_dim])]),
        ),
        Role("prior_log_prob", lambda s: ([(DECODER_INPUT, ["N", s.latent_dim])], [(LOG_PROB_OUTPUT, ["N"])])),
        # f^-1: latents back to the prior's noise space, where interpolation follows the prior's mass
        Role(
            "prior_inverse",
            lambda s: ([(DECODER_INPUT, ["N", s.latent_dim])], [(NOISE_INPUT, ["N", s.latent_dim])]),
        ),
    ),
}


def model_roles(kind: str, prior: str) -> tuple[Role, ...]:
    """Every graph role of a model: its family's, then its prior's."""
    if prior not in PRIOR_ROLES:
        raise ModelFolderError(f"expected model.prior to be one of {', '.join(PRIOR_ROLES)}, got {prior!r}")
    return (*family(kind).roles, *PRIOR_ROLES[prior])


def model_role_names(kind: str, prior: str) -> tuple[str, ...]:
    """The names of model_roles: the graph files a folder holds, in export and load order."""
    return tuple(role.name for role in model_roles(kind, prior))


def find_role(kind: str, prior: str, name: str) -> Role:
    for role in model_roles(kind, prior):
        if role.name == name:
            return role
    names = ", ".join(model_role_names(kind, prior))
    raise ModelFolderError(f"expected a graph role of this model ({names}), got {name!r}")


def family(kind: str) -> Family:
    """The family registered under `kind` (the manifest's model.kind)."""
    if kind not in FAMILIES:
        raise ModelFolderError(f"expected model.kind to be one of {', '.join(FAMILIES)}, got {kind!r}")
    return FAMILIES[kind]
