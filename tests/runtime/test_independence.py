"""The total-correlation estimator and the latent correlation matrix, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from vaeport.runtime.errors import InputError
from vaeport.runtime.independence import (
    aggregate_total_correlation,
    latent_correlation,
    mean_abs_correlation,
    mss_log_weights,
    total_correlation,
)


def gaussian_codes(rho: float, n: int = 8000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Posteriors N(m, 0.25 I) with means m ~ N(0, S), S correlating dimensions 0 and 1 by rho."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
    mean = rng.multivariate_normal(np.zeros(3), cov, n)
    log_var = np.full((n, 3), np.log(0.25))
    aggregate = cov + 0.25 * np.eye(3)  # q(z) is exactly N(0, S + 0.25 I)
    true_tc = 0.5 * (np.log(np.diag(aggregate)).sum() - np.log(np.linalg.det(aggregate)))
    return mean, log_var, rng.standard_normal((n, 3)), true_tc


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_both_estimators_match_the_gaussian_closed_form(rho: float) -> None:
    mean, log_var, eps, true_tc = gaussian_codes(rho)
    assert total_correlation(mean, log_var, eps) == pytest.approx(true_tc, abs=0.03)
    assert aggregate_total_correlation(mean, log_var, eps, samples=3000) == pytest.approx(true_tc, abs=0.03)


def test_the_aggregate_estimator_is_seeded_and_uses_every_image_when_it_can() -> None:
    mean, log_var, eps, _ = gaussian_codes(0.6, n=1500)
    assert aggregate_total_correlation(mean, log_var, eps, 500, seed=1) == aggregate_total_correlation(
        mean, log_var, eps, 500, seed=1
    )
    assert aggregate_total_correlation(mean, log_var, eps, 500, seed=1) != aggregate_total_correlation(
        mean, log_var, eps, 500, seed=2
    )
    every = aggregate_total_correlation(mean, log_var, eps, 1500, seed=1)
    assert aggregate_total_correlation(mean, log_var, eps, 5000, seed=9) == every  # N <= samples: all of them


def test_narrow_posteriors_bias_the_stratified_estimator_not_the_aggregate_one() -> None:
    """Posteriors 10x narrower than the spread of their means: a batch of 256 rarely holds a code's
    neighbours, so minibatch-stratified sampling underestimates log q(z) (more in D dimensions
    than in one); the mixture over every posterior does not."""
    rng = np.random.default_rng(4)
    cov = np.array([[1.0, 0.7], [0.7, 1.0]])
    mean = rng.multivariate_normal(np.zeros(2), cov, 6000)
    log_var = np.full((6000, 2), np.log(0.01))
    eps = rng.standard_normal((6000, 2))
    aggregate = cov + 0.01 * np.eye(2)
    true_tc = 0.5 * (np.log(np.diag(aggregate)).sum() - np.log(np.linalg.det(aggregate)))
    assert aggregate_total_correlation(mean, log_var, eps, samples=3000) == pytest.approx(true_tc, abs=0.05)
    assert abs(total_correlation(mean, log_var, eps, batch=256) - true_tc) > 0.1


def test_total_correlation_grows_with_the_correlation() -> None:
    estimates = [total_correlation(*gaussian_codes(rho)[:3]) for rho in (0.0, 0.4, 0.7, 0.9)]
    assert estimates == sorted(estimates) and estimates[-1] > 0.3


def test_stratified_weights_sum_to_one_per_row() -> None:
    weights = np.exp(mss_log_weights(6, 100))
    assert np.allclose(weights.sum(1), 1.0)
    assert np.allclose(np.diag(weights), 1 / 100)
    assert np.exp(mss_log_weights(1, 10)).item() == pytest.approx(0.1)
    with pytest.raises(InputError, match=r"data set size \(5\) to be at least the batch size \(6\)"):
        mss_log_weights(6, 5)


def test_mismatched_shapes_are_refused() -> None:
    mean, log_var, eps, _ = gaussian_codes(0.0, n=10)
    with pytest.raises(InputError, match=r"one shape \[N,D\], got \[10, 3\], \[10, 2\] and \[10, 3\]"):
        total_correlation(mean, log_var[:, :2], eps)


def test_latent_correlation_of_means() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5000)
    means = np.stack([x, -2 * x + 0.01 * rng.standard_normal(5000), rng.standard_normal(5000), np.full(5000, 3.0)], 1)
    corr = latent_correlation(means)
    assert corr[0, 1] == pytest.approx(-1.0, abs=1e-3) and abs(corr[0, 2]) < 0.05
    assert corr[3].tolist() == [0.0, 0.0, 0.0, 1.0]  # a constant (inactive) dimension correlates with nothing
    assert np.allclose(corr, corr.T)
    active = np.array([True, True, True, False])
    pairs = abs(corr[0, 1]) + abs(corr[0, 2]) + abs(corr[1, 2])
    assert mean_abs_correlation(corr, active) == pytest.approx(pairs / 3, abs=1e-12)
    assert mean_abs_correlation(corr, np.array([True, False, False, False])) == 0.0


def test_dimensions_too_still_to_be_active_correlate_with_nothing() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(4000)
    means = np.stack([x, 0.05 * x, x + 0.1 * rng.standard_normal(4000)], 1)  # dimension 1: variance 0.0025
    corr = latent_correlation(means)
    assert corr[1].tolist() == [0.0, 1.0, 0.0] and corr[0, 2] > 0.99
