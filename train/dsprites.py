"""A dSprites-equivalent data set, rendered with numpy (nothing is downloaded).

The factor grid of Matthey et al.'s dSprites: shape (square, ellipse, heart) x 6 scales in
[0.5, 1] x 40 orientations in [0, 2 pi) x 32 x 32 positions in [0, 1], 737,280 binary images.
Every image is drawn from its factor values alone (pixel centres tested against the rotated,
scaled shape), so any subset can be rendered on demand, in any order, with identical pixels:

    factors = DSPRITES.sample_factors(1000, np.random.default_rng(0))   # (1000, 5) grid indices
    images = DSPRITES.images(factors, size=64)                          # (1000, 1, 64, 64) uint8

Images are uint8 (0 or 255: the runtime reads uint8 as value/255), so the whole grid at 64 x 64
takes 3 GB rather than 12 GB of float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vaeport.runtime.errors import InputError
from vaeport.runtime.inputs import describe

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SIZES = (16, 32, 64)  # image sizes --image-size accepts for dsprites
DEFAULT_SIZE = 64
CHUNK = 4096  # images rendered per numpy pass: bounds the float temporaries to ~130 MB at 64 x 64
# The sprite's extent at scale 1, and where positions 0 and 1 put its centre, as fractions of the
# image side: the largest sprite stays inside the image at every position and orientation.
RADIUS = 0.17
CENTRE_RANGE = (0.22, 0.78)


def factor_values(indices: np.ndarray) -> np.ndarray:
    """Grid indices (N, 5) -> factor values (N, 5) float64: shape index, scale, angle (radians),
    x and y in [0, 1]."""
    indices = check_indices(indices)
    values = np.empty(indices.shape, dtype=np.float64)
    values[:, 0] = indices[:, 0]
    values[:, 1] = np.linspace(0.5, 1.0, FACTOR_SIZES[1])[indices[:, 1]]
    values[:, 2] = indices[:, 2] * (2 * math.pi / FACTOR_SIZES[2])
    values[:, 3] = np.linspace(0.0, 1.0, FACTOR_SIZES[3])[indices[:, 3]]
    values[:, 4] = np.linspace(0.0, 1.0, FACTOR_SIZES[4])[indices[:, 4]]
    return values


def check_indices(indices: np.ndarray) -> np.ndarray:
    """(N, 5) integer grid indices, each within its factor's size; anything else is refused."""
    array = np.asarray(indices)
    if array.ndim != 2 or array.shape[1] != len(FACTOR_SIZES) or array.dtype.kind not in "iu":
        raise InputError(
            f"expected dSprites factor indices as integers of shape [N,{len(FACTOR_SIZES)}] "
            f"({', '.join(FACTOR_NAMES)}), got {describe(array)}"
        )
    for j, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES, strict=True)):
        column = array[:, j]
        if len(column) and (column.min() < 0 or column.max() >= size):
            raise InputError(
                f"expected dSprites factor {name} indices in 0..{size - 1}, "
                f"got values in {int(column.min())}..{int(column.max())}"
            )
    return array.astype(np.int64, copy=False)


def inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in the sprite's own frame (unit extent) lie in `shape`."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= 0.75
    if shape == 1:
        return u * u + 4.0 * v * v <= 1.0  # an ellipse with half-axes 1 and 0.5
    # The heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (y up; v points down the image), scaled and
    # centred on (0, 0).
    x, y = u * 1.15, 0.1 - v * 1.15
    r = x * x + y * y - 1.0
    return r * r * r - x * x * y * y * y <= 0.0


def render(values: np.ndarray, size: int) -> np.ndarray:
    """Factor values (N, 5) -> binary images (N, 1, size, size) uint8 (0 or 255).

    Only a window around each sprite's centre is tested (a sprite never reaches beyond it), and
    each shape's images are drawn in their own pass: ~10x less work than every pixel of every
    image against every shape."""
    n = len(values)
    out = np.zeros((n, 1, size, size), dtype=np.uint8)
    lo, hi = CENTRE_RANGE
    reach = RADIUS * 1.2 * size  # the farthest a pixel of the largest sprite lies from its centre
    window = math.ceil(2 * reach) + 2
    offsets = np.arange(window, dtype=np.int64)
    for start in range(0, n, CHUNK):
        part = values[start : start + CHUNK]
        rows_of = np.arange(start, start + len(part))
        cx = (lo + (hi - lo) * part[:, 3]) * size  # centre in pixel units
        cy = (lo + (hi - lo) * part[:, 4]) * size
        left = np.floor(cx - window / 2).astype(np.int64)
        top = np.floor(cy - window / 2).astype(np.int64)
        cols = left[:, None] + offsets[None, :]  # (n, window) pixel columns of each window
        rows = top[:, None] + offsets[None, :]
        dx = (cols + 0.5 - cx[:, None]).astype(np.float32)[:, None, :]  # (n, 1, window)
        dy = (rows + 0.5 - cy[:, None]).astype(np.float32)[:, :, None]  # (n, window, 1)
        scale = (part[:, 1] * RADIUS * size).astype(np.float32)[:, None, None]
        cos = np.cos(part[:, 2]).astype(np.float32)[:, None, None]
        sin = np.sin(part[:, 2]).astype(np.float32)[:, None, None]
        u = (cos * dx + sin * dy) / scale
        v = (-sin * dx + cos * dy) / scale
        mask = np.empty(u.shape, dtype=bool)
        for shape in range(len(SHAPES)):
            chosen = part[:, 0] == shape
            if chosen.any():
                mask[chosen] = inside(shape, u[chosen], v[chosen])
        hit_n, hit_r, hit_c = np.nonzero(mask)
        out[rows_of[hit_n], 0, rows[hit_n, hit_r], cols[hit_n, hit_c]] = 255
    return out


@dataclass(frozen=True)
class FactorGrid:
    """A data set defined by a grid of ground-truth factors: the interface the disentanglement
    metrics (train/disentanglement.py) use."""

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    @property
    def count(self) -> int:
        return int(np.prod(self.factor_sizes))

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n grid indices (n, F), each factor uniform over its values."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1).astype(np.int64)

    def all_factors(self) -> np.ndarray:
        """Every grid point (count, F), in the order of `index`."""
        grids = np.meshgrid(*[np.arange(s) for s in self.factor_sizes], indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)

    def index(self, factors: np.ndarray) -> np.ndarray:
        """Grid indices (N, F) -> positions 0..count-1 in `all_factors` order."""
        return np.ravel_multi_index(tuple(check_indices(factors).T), self.factor_sizes)

    def images(self, factors: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
        """The images (N, 1, size, size) uint8 of the given grid indices (N, F)."""
        return dsprites_images(factors, size)


def dsprites_images(factors: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """dSprites images (N, 1, size, size) uint8 (0 or 255) for grid indices (N, 5) in the order
    shape, scale, orientation, pos_x, pos_y (see FACTOR_NAMES and FACTOR_SIZES)."""
    if size not in SIZES:
        raise InputError(f"expected a dSprites image size in {', '.join(map(str, SIZES))}, got {size!r}")
    return render(factor_values(factors), size)


DSPRITES = FactorGrid("dsprites", FACTOR_NAMES, FACTOR_SIZES)
FACTOR_GRIDS = {"dsprites": DSPRITES}
