"""The generated dSprites grid: complete, deterministic, order-independent, inside the frame."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vaeport.runtime.errors import InputError
from vaeport.train.datasets import load_dataset
from vaeport.train.dsprites import DSPRITES, FACTOR_SIZES, dsprites_images, factor_values


def test_the_grid_has_every_factor_combination_once() -> None:
    factors = DSPRITES.all_factors()
    assert DSPRITES.count == 737_280 == len(factors)
    assert np.array_equal(DSPRITES.index(factors), np.arange(len(factors)))
    values = factor_values(factors[::1001])
    assert values[:, 1].min() >= 0.5 and values[:, 1].max() <= 1.0
    assert values[:, 2].min() >= 0.0 and values[:, 2].max() < 2 * np.pi
    assert values[:, 3:].min() >= 0.0 and values[:, 3:].max() <= 1.0


def test_an_image_depends_on_its_factors_alone() -> None:
    factors = DSPRITES.sample_factors(300, np.random.default_rng(0))
    whole = dsprites_images(factors, 32)
    reversed_order = dsprites_images(factors[::-1], 32)[::-1]
    single = dsprites_images(factors[7:8], 32)
    assert whole.dtype == np.uint8 and set(np.unique(whole)) <= {0, 255}
    assert np.array_equal(whole, reversed_order) and np.array_equal(whole[7:8], single)


def test_factors_move_and_grow_the_sprite_and_it_stays_inside_the_frame() -> None:
    size = 64
    at = lambda shape, scale, angle, x, y: [shape, scale, angle, x, y]  # noqa: E731
    left, right = dsprites_images(np.array([at(0, 5, 0, 0, 16), at(0, 5, 0, 31, 16)]), size)[:, 0] > 0
    assert np.nonzero(left)[1].mean() + 20 < np.nonzero(right)[1].mean()
    top, bottom = dsprites_images(np.array([at(1, 5, 0, 16, 0), at(1, 5, 0, 16, 31)]), size)[:, 0] > 0
    assert np.nonzero(top)[0].mean() + 20 < np.nonzero(bottom)[0].mean()
    areas = [(dsprites_images(np.array([at(2, s, 0, 16, 16)]), size) > 0).sum() for s in range(6)]
    assert areas == sorted(areas) and areas[-1] > 3 * areas[0]
    corners = np.array([[s, 5, a, x, y] for s in range(3) for a in range(0, 40, 3) for x in (0, 31) for y in (0, 31)])
    frame = dsprites_images(corners, size)[:, 0]
    assert frame.reshape(len(corners), -1).max(1).min() == 255  # every sprite is drawn
    assert frame[:, 0].max() == frame[:, -1].max() == frame[:, :, 0].max() == frame[:, :, -1].max() == 0


def test_shapes_differ_and_rotation_turns_the_ellipse() -> None:
    shapes = dsprites_images(np.array([[s, 5, 3, 16, 16] for s in range(3)]), 64)
    assert not np.array_equal(shapes[0], shapes[1]) and not np.array_equal(shapes[1], shapes[2])
    flat, upright = dsprites_images(np.array([[1, 5, 0, 16, 16], [1, 5, 10, 16, 16]]), 64)[:, 0] > 0
    assert np.ptp(np.nonzero(flat)[1]) > 1.5 * np.ptp(np.nonzero(flat)[0])  # wide at angle 0
    assert np.ptp(np.nonzero(upright)[0]) > 1.5 * np.ptp(np.nonzero(upright)[1])  # tall at a quarter turn


@pytest.mark.parametrize(
    ("factors", "message"),
    [
        (np.array([[0, 6, 0, 0, 0]]), "scale indices in 0..5, got values in 6..6"),
        (np.array([[0, 0, -1, 0, 0]]), "orientation indices in 0..39"),
        (np.zeros((2, 4), dtype=np.int64), "shape [N,5]"),
        (np.zeros((2, 5)), "as integers"),
    ],
)
def test_bad_factor_indices_are_refused(factors: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        dsprites_images(factors, 32)


def test_image_sizes_other_than_16_32_64_are_refused() -> None:
    with pytest.raises(InputError, match="expected a dSprites image size in 16, 32, 64, got 28"):
        dsprites_images(np.zeros((1, 5), dtype=np.int64), 28)
    with pytest.raises(InputError, match="dsprites: expected --image-size 16, 32, 64, got 28"):
        load_dataset("dsprites", image_size=28)


def test_the_data_set_is_the_whole_grid_split_by_seed() -> None:
    data = load_dataset("dsprites", image_size=16, seed=3)
    assert data.train.dtype == np.uint8 and data.image_shape == (1, 16, 16)
    assert len(data.train) + len(data.test) == DSPRITES.count and len(data.test) == 73_728
    assert data.factors == "dsprites" and data.classes == ("square", "ellipse", "heart")
    assert np.bincount(data.test_labels).tolist() == pytest.approx([73_728 / 3] * 3, rel=0.05)
    again = load_dataset("dsprites", image_size=16, seed=3)
    assert np.array_equal(again.test, data.test)
    other = load_dataset("dsprites", image_size=16, seed=4)
    assert not np.array_equal(other.test_labels, data.test_labels)
    assert FACTOR_SIZES[0] == len(data.classes)


def test_the_docs_snippet_runs() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "disentanglement.md").read_text()
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/disentanglement.md", "exec"), namespace)
    assert namespace["images"].shape == (1000, 1, 64, 64) and namespace["values"].shape == (1000, 5)
