"""DReG: the trainer's hooked IWAE step gives the doubly reparameterized encoder gradient and
leaves the decoder's gradient and the loss's value exactly as in plain IWAE training."""

import pytest
import torch

from vaeport.train.config import ModelConfig
from vaeport.train.datasets import load_digits
from vaeport.train.distributions import DiagonalGaussian, StandardNormal
from vaeport.train.loss import reconstruction_nll
from vaeport.train.trainer import importance_weighted_terms
from vaeport.train.vae import VAE

K, B, D = 3, 16, 4


def small_vae_and_batch() -> tuple[VAE, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = VAE(ModelConfig((1, 8, 8), latent_dim=D, hidden=(32,), activation="silu"))
    x = torch.from_numpy(load_digits(seed=0).train[:B])
    return model, x, torch.randn(K, B, D)


def step(model: VAE, x: torch.Tensor, eps: torch.Tensor, weight: float, dreg: bool) -> tuple:
    """(loss, encoder gradients, decoder gradients) of one trainer step."""
    enc, dec = list(model.encoder.parameters()), list(model.decoder.parameters())
    terms = importance_weighted_terms(model, model, x, None, eps, weight, dreg=dreg)
    grads = torch.autograd.grad(terms.loss, enc + dec)
    return terms.loss, grads[: len(enc)], grads[len(enc) :]


@pytest.mark.parametrize("weight", [1.0, 0.6])
def test_dreg_step_gives_the_dreg_estimator(weight):
    model, x, eps = small_vae_and_batch()
    enc = list(model.encoder.parameters())
    dreg_loss, got_enc, got_dec = step(model, x, eps, weight, dreg=True)
    plain_loss, plain_enc, plain_dec = step(model, x, eps, weight, dreg=False)
    assert torch.allclose(dreg_loss, plain_loss, atol=1e-5)

    # The estimator written out: -mean_x sum_k c_k d/dphi log w_k, with q's parameters held
    # constant inside log q and c_k = w~_k * ((1 - w) + w * w~_k) (w~_k^2 at w = 1).
    mean, log_var = model.encode(x)
    z = DiagonalGaussian(mean, log_var).sample(eps)
    logits = model.decode(z.reshape(-1, D))
    log_px = -reconstruction_nll(logits, x.expand(K, *x.shape).reshape(-1, *x.shape[1:]), "bernoulli").reshape(K, B)
    log_q = DiagonalGaussian(mean.detach(), log_var.detach()).log_prob(z)
    log_w = log_px + weight * (StandardNormal(D).log_prob(z) - log_q)
    normalized = torch.softmax(log_w, dim=0).detach()
    coefficient = normalized * ((1 - weight) + weight * normalized)
    want_enc = torch.autograd.grad(-(coefficient * log_w).sum(0).mean(), enc)

    for got, want in zip(got_enc, want_enc, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)
    for got, want in zip(got_dec, plain_dec, strict=True):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7)
    # and it is not the plain IWAE encoder gradient
    assert max(float((g - p).abs().max()) for g, p in zip(got_enc, plain_enc, strict=True)) > 1e-4
