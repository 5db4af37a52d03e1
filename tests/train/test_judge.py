"""benchmarks/conditional.py's judge: the Frechet distance formula and the classifier recipe."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fashion_classifier import FEATURES, RECIPES, frechet_distance, train_judge

from vaeport.train.datasets import load_dataset

from ..conftest import write_idx_set


def test_frechet_distance_matches_the_textbook_formula():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2000, 6))
    b = rng.standard_normal((2000, 6)) @ rng.standard_normal((6, 6)) + 0.5
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shifted = a + np.array([3.0, 0, 0, 0, 0, 0])
    assert frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-9)


def test_frechet_distance_with_dead_features():
    """ReLU features that never fire make the covariances singular; the distance stays finite."""
    rng = np.random.default_rng(1)
    a, b = np.maximum(rng.standard_normal((500, 5)), 0), np.maximum(rng.standard_normal((500, 5)), 0)
    a[:, 2] = b[:, 2] = 0.0
    assert 0.0 <= frechet_distance(a, b) < 0.1


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_judge_learns_the_classes(tmp_path, recipe):
    data = load_dataset("mnist", data_dir=write_idx_set(tmp_path / "idx", n_train=400, n_test=100))
    judge = train_judge(data.train, data.train_labels, data.test, data.test_labels, recipe)
    assert judge.test_accuracy > 0.9  # four well-separated quadrant classes
    assert judge.features(data.test[:7]).shape == (7, FEATURES)
    # eval mode (BatchNorm's running statistics, no dropout): an image's label does not depend on its batch
    np.testing.assert_array_equal(judge.predict(data.test[:5]), judge.predict(data.test)[:5])
