"""Drawing a VQ-VAE's code grids from its autoregressive prior, in numpy: h * w calls of the
`prior_step` graph per batch, each position drawn from its logits by inverse-CDF sampling with
one seeded uniform (train/ar_prior.py's `draw` and `sample_codes` are the torch twins, and give
the same codes from the same uniforms and logits).

The keys and values of the positions drawn so far live in buffers of the caller, a pair
(N, heads, h*w, head_dim) per layer, that go into every step; each step returns its position's
keys and values, which are written in here. So a step costs one position's work, not the grid's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vaeport.runtime.files import LABEL_INPUT, POSITION_INPUT, TOKEN_INPUT, past_inputs

StepFunction = Callable[[dict[str, np.ndarray]], list[np.ndarray]]  # feeds by name -> (logits, k_0, v_0, ...)


@dataclass(frozen=True)
class CodeShape:
    """What sampling needs to know of a VQ-VAE: its grid, codebook size and buffer shape."""

    grid: tuple[int, int]
    codebook_size: int
    cache: tuple[int, int, int, int]  # (layers, heads, h*w, head_dim)

    @property
    def length(self) -> int:
        return self.grid[0] * self.grid[1]


def draw(logits: np.ndarray, uniforms: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Codes [N] from logits [N, K] and one uniform in [0, 1) per row: the first code whose
    cumulative probability (float64 softmax of logits / temperature) exceeds the uniform;
    temperature 0 takes the most probable code."""
    if temperature == 0:
        return logits.argmax(axis=-1).astype(np.int64)
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    probs = np.exp(scaled)
    probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(probs, axis=-1)
    codes = (cumulative <= uniforms[:, None]).sum(axis=-1)
    return np.minimum(codes, logits.shape[-1] - 1).astype(np.int64)


def draw_classes(uniforms: np.ndarray, counts: tuple[int, ...]) -> np.ndarray:
    """Class indices [N] drawn from the training frequencies `counts` by inverse CDF."""
    cumulative = np.cumsum(np.asarray(counts, dtype=np.float64))
    cumulative /= cumulative[-1]
    return np.minimum((cumulative <= uniforms[:, None]).sum(axis=-1), len(counts) - 1).astype(np.int64)


def sample_codes(
    step: StepFunction,
    shape: CodeShape,
    uniforms: np.ndarray,
    labels: np.ndarray | None = None,
    temperature: float = 1.0,
    logits_out: np.ndarray | None = None,
) -> np.ndarray:
    """Code grids [N, h, w] int64, position t of image i drawn with uniforms[i, t]; `labels` [N]
    for a class-conditional prior. `logits_out` [N, h*w, K], when given, receives each
    position's logits (the parity gate compares them with the whole-grid graph's)."""
    n = len(uniforms)
    layers, heads, length, head_dim = shape.cache
    names = past_inputs(layers)
    past = [np.zeros((n, heads, length, head_dim), dtype=np.float32) for _ in names]
    token = np.full(n, shape.codebook_size, dtype=np.int64)  # the start token
    codes = np.empty((n, length), dtype=np.int64)
    for t in range(length):
        feeds = {TOKEN_INPUT: token, POSITION_INPUT: np.array([t], dtype=np.int64)}
        feeds.update(zip(names, past, strict=True))
        if labels is not None:
            feeds[LABEL_INPUT] = labels
        logits, *new = step(feeds)
        for buffer, value in zip(past, new, strict=True):
            buffer[:, :, t] = value
        if logits_out is not None:
            logits_out[:, t] = logits
        token = codes[:, t] = draw(logits, uniforms[:, t], temperature)
    return codes.reshape(n, *shape.grid)
