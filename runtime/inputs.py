"""Check and normalize what users pass to the runtime: images and latents."""

from __future__ import annotations

from typing import Any

import numpy as np

from vaeport.runtime.errors import InputError


def describe(array: np.ndarray) -> str:
    return f"[{','.join(str(s) for s in array.shape)}] {array.dtype}"


def expected_images(name: str, image_shape: tuple[int, int, int]) -> str:
    c, h, w = image_shape
    one_channel = f" or [{h},{w}]" if c == 1 else ""
    return f"expected {name} of shape [N,{c},{h},{w}] (or [{c},{h},{w}]{one_channel}) as float in [0,1] or uint8"


def as_images(x: Any, image_shape: tuple[int, int, int], name: str = "x") -> np.ndarray:
    """[N,C,H,W], [C,H,W] or [H,W] (one channel); uint8 (scaled by 1/255) or float in [0, 1]
    -> float32 [N,C,H,W]. Anything else raises InputError naming what was expected."""
    array = np.asarray(x)
    batch = array
    if array.ndim == 3:
        batch = array[None]
    elif array.ndim == 2 and image_shape[0] == 1:
        batch = array[None, None]
    if batch.ndim != 4 or batch.shape[1:] != tuple(image_shape) or batch.shape[0] == 0:
        raise InputError(f"{expected_images(name, image_shape)}, got {describe(array)}")
    if batch.dtype == np.uint8:
        return batch.astype(np.float32) * np.float32(1.0 / 255.0)
    if batch.dtype.kind != "f":
        raise InputError(f"{expected_images(name, image_shape)}, got {describe(array)}")
    batch = batch.astype(np.float32, copy=False)
    if not np.isfinite(batch).all():
        raise InputError(f"{expected_images(name, image_shape)}, got NaN or Inf values")
    lo, hi = float(batch.min()), float(batch.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{expected_images(name, image_shape)}, got values in [{lo:g}, {hi:g}]")
    return np.ascontiguousarray(batch)


def unit_images(batch: np.ndarray) -> np.ndarray:
    """A batch of a data set's images as float32 in [0, 1]: uint8 is read as value / 255 (the data
    sets keep dSprites as uint8), float32 passes through unchanged."""
    if batch.dtype == np.uint8:
        return batch.astype(np.float32) / np.float32(255.0)
    return batch


def as_latents(z: Any, latent_dim: int, name: str = "z") -> np.ndarray:
    """[N,D] or [D] finite floats -> float32 [N,D]."""
    # The messages are built only on error: this runs on every decode call, where a few
    # microseconds are a tenth of a one-image decode.
    array = np.asarray(z)
    batch = array[None] if array.ndim == 1 else array
    if batch.ndim != 2 or batch.shape[1] != latent_dim or batch.shape[0] == 0 or batch.dtype.kind != "f":
        raise InputError(f"{expected_latents(name, latent_dim)}, got {describe(array)}")
    batch = batch.astype(np.float32, copy=False)
    if not np.isfinite(batch).all():
        raise InputError(f"{expected_latents(name, latent_dim)}, got NaN or Inf values")
    return np.ascontiguousarray(batch)


def expected_latents(name: str, latent_dim: int) -> str:
    return f"expected {name} of shape [N,{latent_dim}] (or [{latent_dim}]) as finite floats"


def check_count(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise InputError(f"expected {name} to be a positive integer, got {n!r}")
    return int(n)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A non-negative integer (Python or numpy); anything else (strings, floats, bools) is refused
    rather than silently converted, so the same call always means the same numbers."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"expected {name} to be a non-negative integer, got {seed!r}")
    return int(seed)


def fresh_seed() -> int:
    """A random seed for calls made with seed=None."""
    return int(np.random.SeedSequence().entropy % (2**63))
