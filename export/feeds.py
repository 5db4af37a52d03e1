"""The seeded inputs every cross-runtime check feeds the graphs: one function for the export gate,
the fp16/int8 checks, `make parity` (parity matrix, compatibility matrix, onnxruntime-node and
-web) and the tests. numpy only: it needs neither torch nor onnx.

Inputs are made by name, from the role's I/O in the model's family (runtime/families.py):
`x` are real test images (a seeded draw), `y` their own labels where the graph also takes images,
else seeded labels of every class, `z` (latents) and `eps` (a prior's noise) seeded standard
normals; a VQ-VAE's `codes` seeded codebook indices, its step's `token` a code or the start token,
`position` one position of the grid and `past_*` seeded standard normals (the prior's key/value
buffers). A graph role with another input adds its rule here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.runtime.errors import ExportError
from vaeport.runtime.families import IO
from vaeport.runtime.files import (
    CODES,
    DECODER_INPUT,
    ENCODER_INPUT,
    LABEL_INPUT,
    NOISE_INPUT,
    PAST_PREFIX,
    POSITION_INPUT,
    TOKEN_INPUT,
)
from vaeport.runtime.inputs import unit_images

Feeds = dict[str, np.ndarray]  # input name -> array, in the graph's input order


def batch_of(images: np.ndarray, n: int, dtype: type = np.float32) -> np.ndarray:
    """The first n images (or labels), cycling when fewer exist."""
    return np.resize(images, (n, *images.shape[1:])).astype(dtype)


@dataclass(frozen=True)
class Examples:
    """Real images for the checks, with their labels and the class count of a conditional model
    (labels None and classes 0 for an unconditional one)."""

    images: np.ndarray
    latent_dim: int
    labels: np.ndarray | None = None
    classes: int = 0
    codebook_size: int = 0  # a VQ-VAE's K (0: not one)


def role_feeds(inputs: IO, examples: Examples, n: int, rng: np.random.Generator) -> Feeds:
    """n rows of every input of one graph (its I/O spec `inputs`), drawn from `rng`."""
    names = [name for name, _ in inputs]
    shapes = dict(inputs)
    feeds: Feeds = {}
    order = rng.permutation(len(examples.images)) if ENCODER_INPUT in names else None
    for name in names:
        if name == ENCODER_INPUT:
            # only the n images drawn are read (a data set may be large, or uint8: scaled before the cast)
            feeds[name] = batch_of(unit_images(examples.images[order[:n]]), n)
        elif name == LABEL_INPUT and order is not None:
            if examples.labels is None:
                raise ExportError("expected the test images' labels for a conditional model, got none")
            feeds[name] = batch_of(examples.labels[order[:n]], n, np.int64)
        elif name == LABEL_INPUT:
            feeds[name] = rng.integers(0, examples.classes, n).astype(np.int64)
        elif name in (DECODER_INPUT, NOISE_INPUT):  # latents, or a prior's noise: seeded N(0, I)
            feeds[name] = rng.standard_normal((n, examples.latent_dim), dtype=np.float32)
        elif name == CODES:
            feeds[name] = rng.integers(0, examples.codebook_size, sized(shapes[name], n)).astype(np.int64)
        elif name == TOKEN_INPUT:  # a code, or the start token K
            feeds[name] = rng.integers(0, examples.codebook_size + 1, n).astype(np.int64)
        elif name == POSITION_INPUT:  # a position of the grid: the buffers' length is their 3rd size
            length = next(shape[2] for other, shape in inputs if other.startswith(PAST_PREFIX))
            feeds[name] = rng.integers(0, length, 1).astype(np.int64)
        elif name.startswith(PAST_PREFIX):
            feeds[name] = rng.standard_normal(sized(shapes[name], n), dtype=np.float32)
        else:
            raise ExportError(f"no rule to make seeded inputs for a graph input named {name!r}")
    return feeds


def sized(shape: list[Any], n: int) -> tuple[int, ...]:
    """A spec's shape with its batch axis "N" set to n."""
    return tuple(n if dim == "N" else int(dim) for dim in shape)


def seeded_feeds(roles: dict[str, IO], examples: Examples, batch: int, rng: np.random.Generator) -> dict[str, Feeds]:
    """For each role (name -> its inputs' spec), `batch` rows of every input, drawn in role order."""
    return {role: role_feeds(inputs, examples, batch, rng) for role, inputs in roles.items()}


def manifest_inputs(manifest: Any) -> dict[str, IO]:
    """Each role's inputs as the model folder's manifest says they must be."""
    return {role: manifest.expected_io(role)[0] for role in manifest.roles}


def write_json(feeds: dict[str, Feeds], path: Path) -> None:
    """The feeds as JSON for web/tools/node_parity.mjs and web/parity.html:
    {role: {input: {"shape", "dtype", "data"}}}."""
    payload = {
        role: {name: {"shape": list(a.shape), "dtype": a.dtype.name, "data": a.ravel().tolist()}
               for name, a in f.items()}
        for role, f in feeds.items()
    }
    path.write_text(json.dumps(payload))
