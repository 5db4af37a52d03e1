"""--objective capacity (Burgess et al. 2018): reconstruction + gamma * |KL - C| with C raised over
training; the KL follows C, the ramp is a function of the step, and what does not apply is refused."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from vaeport.runtime.errors import InputError
from vaeport.train import TrainConfig, fit
from vaeport.train.distributions import DiagonalGaussian
from vaeport.train.fitting import check_distributed
from vaeport.train.loss import capacity_loss
from vaeport.train.trainer import allowed_kl


def test_the_loss_prices_the_distance_of_the_kl_from_the_allowed_capacity() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(16, 3, generator=g, dtype=torch.float64, requires_grad=True)
    log_var = torch.zeros(16, 3, dtype=torch.float64)
    x = torch.rand(16, 1, 2, 2, generator=g, dtype=torch.float64)
    logits = torch.randn(16, 1, 2, 2, generator=g, dtype=torch.float64)
    kl = float(DiagonalGaussian(mean.detach(), log_var).kl_per_dimension().sum() / 16)
    for allowed in (0.0, kl - 1.0, kl + 2.0):
        terms = capacity_loss(logits, x, mean, log_var, "bernoulli", 100.0, allowed)
        assert float(terms.kl) == pytest.approx(kl)
        assert float(terms.loss - terms.recon) == pytest.approx(100.0 * abs(kl - allowed))
    # below the capacity the KL is pushed up (the means outward), above it down
    below = capacity_loss(logits, x, mean, log_var, "bernoulli", 1.0, kl + 2.0)
    (grad,) = torch.autograd.grad(below.loss, mean)
    assert float((grad * mean).sum()) < 0
    above = capacity_loss(logits, x, mean, log_var, "bernoulli", 1.0, kl - 1.0)
    (grad,) = torch.autograd.grad(above.loss, mean)
    assert float((grad * mean).sum()) > 0


def test_the_allowed_kl_rises_linearly_then_holds() -> None:
    cfg = TrainConfig(objective="capacity", capacity=20.0, capacity_epochs=2.0)
    assert [allowed_kl(cfg, step, 10) for step in (0, 5, 10, 20, 35)] == [0.0, 5.0, 10.0, 20.0, 20.0]
    assert allowed_kl(TrainConfig(objective="capacity", capacity=7.0, capacity_epochs=0.0), 0, 10) == 7.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"objective": "capacity", "kind": "ae"}, "expected --model vae with --objective capacity"),
        ({"objective": "capacity", "prior": "flow"}, "expected --prior normal with --objective capacity"),
        ({"objective": "capacity", "kl_warmup_epochs": 1.0}, "expected --kl-warmup-epochs 0 with --objective capacity"),
        ({"capacity": 10.0}, "expected --capacity only with --objective capacity, got it (10.0) with --objective elbo"),
        ({"capacity_epochs": 3.0, "objective": "btcvae"}, "expected --capacity-epochs only with --objective capacity"),
    ],
)
def test_options_that_do_not_apply_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        TrainConfig(**settings)


def test_ddp_is_refused() -> None:
    with pytest.raises(InputError, match=re.escape("got --objective capacity (|KL - C| needs the KL across")):
        check_distributed(TrainConfig(objective="capacity"), distributed=True)


def test_the_kl_follows_the_capacity_and_resume_is_bit_identical(tmp_path) -> None:
    """On real data the KL a plain ELBO settles at is far from the capacity: the capacity run's
    KL ends near its C instead (below and above the ELBO's, in two runs)."""
    base = dict(dataset="digits", latent_dim=4, hidden=(32,), threads=1, seed=3, lr=3e-3)
    elbo = fit(TrainConfig(epochs=4, **base), tmp_path / "elbo", quiet=True).metrics[-1]["test_kl"]
    for target in (elbo / 3, elbo * 2):
        settings = dict(objective="capacity", beta=50.0, capacity=target, capacity_epochs=2.0, **base)
        run = fit(TrainConfig(epochs=4, **settings), tmp_path / f"c{target:.0f}", quiet=True)
        last = run.metrics[-1]
        assert last["allowed_kl"] == target
        assert last["train_kl"] == pytest.approx(target, rel=0.1), (elbo, target)
        assert abs(last["test_kl"] - target) < abs(elbo - target) / 2
    fit(TrainConfig(epochs=1, **settings), tmp_path / "half", quiet=True)
    resumed = fit(TrainConfig(epochs=4, **settings), tmp_path / "half", resume=True, quiet=True)

    def untimed(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if "second" not in k} for row in rows]

    assert untimed(resumed.metrics) == untimed(run.metrics)
    assert np.isfinite(last["test_neg_elbo"])
