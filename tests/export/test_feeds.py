"""The checks' seeded inputs: real images in [0, 1] whatever the data set's dtype, cycled when
fewer exist than the batch needs."""

from __future__ import annotations

import numpy as np

from vaeport.export.feeds import Examples, role_feeds

INPUTS = [("x", [None, 1, 4, 4]), ("y", [None])]


def test_uint8_images_feed_as_their_unit_floats() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (50, 1, 4, 4), dtype=np.uint8)
    labels = rng.integers(0, 3, 50)
    as_bytes = role_feeds(INPUTS, Examples(raw, 2, labels, 3), 8, np.random.default_rng(1))
    as_floats = role_feeds(INPUTS, Examples(raw / np.float32(255), 2, labels, 3), 8, np.random.default_rng(1))
    assert as_bytes["x"].dtype == np.float32 and as_bytes["x"].max() <= 1.0
    np.testing.assert_allclose(as_bytes["x"], as_floats["x"], atol=1e-7)
    assert np.array_equal(as_bytes["y"], as_floats["y"])


def test_fewer_images_than_the_batch_are_cycled_in_the_drawn_order() -> None:
    images = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1) / 10
    feeds = role_feeds([("x", [None, 1, 1, 1])], Examples(images, 2), 7, np.random.default_rng(2))
    order = np.random.default_rng(2).permutation(3)
    assert np.array_equal(feeds["x"].ravel(), np.resize(images[order].ravel(), 7))
