import math

import pytest
import torch

from vaeport.train.distributions import DiagonalGaussian, StandardNormal
from vaeport.train.loss import bernoulli_nll, gaussian_nll, vae_loss


def kl_to_standard_normal(mean, log_var):
    return DiagonalGaussian(mean, log_var).kl(StandardNormal(mean.shape[-1]))


def log_normal_diag(z, mean, log_var):
    return DiagonalGaussian(mean, log_var).log_prob(z)


def log_normal_standard(z):
    return StandardNormal(z.shape[-1]).log_prob(z)


def test_kl_closed_form_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mean = torch.tensor([[0.5, -1.0, 0.0]])
    log_var = torch.tensor([[-1.0, 0.3, 0.0]])
    eps = torch.randn((400_000, 3), generator=gen, dtype=torch.float64)
    z = mean.double() + torch.exp(0.5 * log_var.double()) * eps
    log_q = log_normal_diag(z, mean.double(), log_var.double())
    log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
    monte_carlo = float((log_q - log_p).mean())
    closed = float(kl_to_standard_normal(mean, log_var))
    assert closed == pytest.approx(0.5 * (0.25 + math.exp(-1) - 1 + 1) + 0.5 * (1 + math.exp(0.3) - 1 - 0.3), rel=1e-6)
    assert monte_carlo == pytest.approx(closed, abs=0.01)


def test_kl_zero_at_prior():
    assert float(kl_to_standard_normal(torch.zeros(1, 4), torch.zeros(1, 4))) == 0.0


def test_bernoulli_nll_by_hand():
    logits = torch.tensor([[[[0.0, 2.0]]]])  # p = 0.5, sigmoid(2)
    x = torch.tensor([[[[1.0, 0.25]]]])
    p = 1 / (1 + math.exp(-2))
    expected = -math.log(0.5) - (0.25 * math.log(p) + 0.75 * math.log(1 - p))
    assert float(bernoulli_nll(logits, x)) == pytest.approx(expected, rel=1e-6)


def test_gaussian_nll_matches_torch_distributions():
    logits = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    x = torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    scale = torch.tensor(0.2)
    ref = -torch.distributions.Normal(torch.sigmoid(logits), scale).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_nll(logits, x, scale), ref)


def test_vae_loss_weights_kl_and_ae_has_none():
    logits = torch.zeros(2, 1, 2, 2)
    x = torch.ones(2, 1, 2, 2)
    mean = torch.ones(2, 3)
    log_var = torch.zeros(2, 3)
    terms = vae_loss(logits, x, mean, log_var, "bernoulli", kl_weight=0.5)
    assert float(terms.recon) == pytest.approx(4 * math.log(2))
    assert float(terms.kl) == pytest.approx(1.5)
    assert float(terms.loss) == pytest.approx(4 * math.log(2) + 0.75)
    assert float(terms.neg_elbo) == pytest.approx(4 * math.log(2) + 1.5)
    ae = vae_loss(logits, x, mean, None, "bernoulli", kl_weight=1.0)
    assert float(ae.kl) == 0.0 and float(ae.loss) == pytest.approx(4 * math.log(2))


def test_iwae_loss_k1_is_the_single_sample_elbo_and_more_samples_tighten_it():
    from vaeport.train.loss import iwae_loss, reconstruction_nll

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 3, 3, generator=gen)
    mean, log_var = torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen) * 0.1
    weight = torch.randn(2, 9, generator=gen)

    def decode(z):
        return (z @ weight).reshape(-1, 1, 3, 3)

    z1 = mean + torch.exp(0.5 * log_var) * torch.randn(1, 6, 2, generator=gen)
    terms = iwae_loss(decode(z1.reshape(-1, 2)), x, z1, mean, log_var, "bernoulli", 1.0)
    log_q = log_normal_diag(z1[0], mean, log_var)
    expected = (reconstruction_nll(decode(z1[0]), x, "bernoulli") + log_q - log_normal_standard(z1[0])).mean()
    assert float(terms.loss) == pytest.approx(float(expected), rel=1e-5)
    eps = torch.randn(64, 6, 2, generator=gen)
    z = mean + torch.exp(0.5 * log_var) * eps
    single = [
        float(iwae_loss(decode(z[i : i + 1].reshape(-1, 2)), x, z[i : i + 1], mean, log_var, "bernoulli", 1.0).loss)
        for i in range(64)
    ]
    assert float(iwae_loss(decode(z.reshape(-1, 2)), x, z, mean, log_var, "bernoulli", 1.0).loss) < sum(single) / 64
