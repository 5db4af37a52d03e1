"""Seeded sampling in numpy: z ~ N(0, I) by blocks, and the reparameterized posterior sample.

Latent i is drawn from a generator seeded with (seed, i // BLOCK), so any range of images can
be produced on its own (shards on many machines) and still match one unsharded run exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BLOCK = 1024  # latents per generator block


def reparameterize(mean: np.ndarray, log_var: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """z = mean + exp(0.5 * log_var) * eps, in float32."""
    return (mean + np.exp(0.5 * log_var) * eps).astype(np.float32, copy=False)


def standard_normal_block(seed: int, block: int, dim: int) -> np.ndarray:
    """The BLOCK x dim standard normals of block `block` under `seed`."""
    rng = np.random.default_rng([int(seed), int(block)])
    return rng.standard_normal((BLOCK, dim), dtype=np.float32)


def uniform_block(seed: int, block: int, dim: int) -> np.ndarray:
    """The BLOCK x dim uniforms in [0, 1) (float64) of block `block` under `seed`."""
    rng = np.random.default_rng([int(seed), int(block)])
    return rng.random((BLOCK, dim))


def seeded_rows(
    block_of: Callable[[int, int, int], np.ndarray], seed: int, start: int, count: int, dim: int
) -> np.ndarray:
    """Rows start .. start+count-1 of the stream whose blocks `block_of(seed, block, dim)` makes."""
    out: np.ndarray | None = None
    filled = 0
    while filled < count:
        index = start + filled
        block, offset = divmod(index, BLOCK)
        take = min(BLOCK - offset, count - filled)
        rows = block_of(seed, block, dim)
        if out is None:
            out = np.empty((count, dim), dtype=rows.dtype)
        out[filled : filled + take] = rows[offset : offset + take]
        filled += take
    return out if out is not None else np.empty((0, dim), dtype=np.float32)


def prior_latents(seed: int, start: int, count: int, dim: int, temperature: float = 1.0) -> np.ndarray:
    """Latents start .. start+count-1 of the seeded stream, times `temperature`; (count, dim)."""
    out = seeded_rows(standard_normal_block, seed, start, count, dim)
    if temperature != 1.0:
        out *= np.float32(temperature)
    return out


def prior_uniforms(seed: int, start: int, count: int, dim: int) -> np.ndarray:
    """Uniforms in [0, 1) for samples start .. start+count-1 (a VQ-VAE's draws, one column per
    position); (count, dim) float64, row i depending only on (seed, i)."""
    return seeded_rows(uniform_block, seed, start, count, dim)


def posterior_noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """eps ~ N(0, I) of `shape` for reparameterized posterior samples."""
    return np.random.default_rng(int(seed)).standard_normal(shape, dtype=np.float32)


def image_noise(seed: int, start: int, count: int, k: int, dim: int) -> np.ndarray:
    """eps for k posterior samples of images start..start+count-1, shape (k, count, dim).

    Image i's noise depends only on (seed, i), so evaluation gives the same numbers whatever the
    batch size, and the torch and ONNX evaluation paths can use identical noise.
    """
    out = np.empty((count, k, dim), dtype=np.float32)
    for j in range(count):
        out[j] = np.random.default_rng([int(seed), start + j]).standard_normal((k, dim), dtype=np.float32)
    return out.transpose(1, 0, 2)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between two vectors; linear when they are (anti)parallel."""
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    return (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)
