"""beta-TCVAE: the KL's three parts add up, beta weighs only the total correlation, and the
objective trains; what does not apply is refused."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from vaeport.runtime.errors import InputError
from vaeport.runtime.independence import batch_log_densities
from vaeport.train import TrainConfig, fit
from vaeport.train.distributions import DiagonalGaussian, StandardNormal
from vaeport.train.loss import btcvae_loss, kl_decomposition


def batch(seed: int = 0, b: int = 32, d: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(b, d, generator=g, dtype=torch.float64)
    log_var = torch.randn(b, d, generator=g, dtype=torch.float64) * 0.3 - 1.0
    z = DiagonalGaussian(mean, log_var).sample(torch.randn(b, d, generator=g, dtype=torch.float64))
    return z, mean, log_var


def test_the_three_parts_add_up_to_the_single_sample_kl() -> None:
    z, mean, log_var = batch()
    mi, tc, dw_kl = kl_decomposition(z, mean, log_var, dataset_size=1000)
    kl = (DiagonalGaussian(mean, log_var).log_prob(z) - StandardNormal(5).log_prob(z)).mean()
    assert float(mi + tc + dw_kl) == pytest.approx(float(kl), abs=1e-9)
    assert float(tc) > -0.5  # an estimate, but not a wild one


def test_torch_and_numpy_estimate_the_same_total_correlation() -> None:
    z, mean, log_var = batch(seed=1)
    _, tc, _ = kl_decomposition(z, mean, log_var, dataset_size=500)
    joint, marginals = batch_log_densities(z.numpy(), mean.numpy(), log_var.numpy(), 500)
    assert float(tc) == pytest.approx(float((joint - marginals).mean()), abs=1e-10)


def test_beta_weighs_only_the_total_correlation() -> None:
    z, mean, log_var = batch(seed=2)
    x = torch.rand(32, 1, 2, 2, dtype=torch.float64)
    logits = torch.randn(32, 1, 2, 2, dtype=torch.float64)
    one = btcvae_loss(logits, x, z, mean, log_var, "bernoulli", 1.0, 1.0, 1000)
    six = btcvae_loss(logits, x, z, mean, log_var, "bernoulli", 6.0, 1.0, 1000)
    _, tc, _ = kl_decomposition(z, mean, log_var, 1000)
    assert float(six.loss - one.loss) == pytest.approx(5.0 * float(tc), abs=1e-9)
    assert float(one.kl) == pytest.approx(float(DiagonalGaussian(mean, log_var).kl_per_dimension().sum() / 32))


def test_an_unknown_data_set_size_is_refused() -> None:
    z, mean, log_var = batch()
    with pytest.raises(InputError, match="expected the training set's size for --objective btcvae"):
        kl_decomposition(z, mean, log_var, None)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "ae"}, "expected --model vae with --objective btcvae"),
        ({"prior": "flow"}, "expected --prior normal with --objective btcvae"),
        ({"batch_size": 1}, "expected --batch-size of at least 2 with --objective btcvae"),
        ({"samples": 4}, "(btcvae uses one sample), got --samples 4 with --objective btcvae"),
    ],
)
def test_options_that_do_not_apply_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        TrainConfig(objective="btcvae", **settings)


def test_btcvae_trains_and_resumes_bit_identically(tmp_path) -> None:
    settings = dict(dataset="digits", objective="btcvae", beta=6.0, latent_dim=4, hidden=(32,), threads=1, seed=3)
    whole = fit(TrainConfig(epochs=2, **settings), tmp_path / "whole", quiet=True)
    fit(TrainConfig(epochs=1, **settings), tmp_path / "half", quiet=True)
    resumed = fit(TrainConfig(epochs=2, **settings), tmp_path / "half", resume=True, quiet=True)
    assert np.isfinite(whole.metrics[-1]["test_neg_elbo"])
    assert whole.metrics[-1]["train_loss"] < whole.metrics[0]["train_loss"]

    def untimed(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if "second" not in k} for row in rows]

    assert untimed(resumed.metrics) == untimed(whole.metrics)
