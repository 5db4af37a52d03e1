"""The negative ELBO in nats per image: reconstruction NLL + beta * KL(q(z|x) || p(z)), the
importance-weighted bound, and beta-TCVAE's split of the KL. The distributions (posterior, prior, their KL) live in
train/distributions.py; this module only combines them with the reconstruction term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaeport.runtime.errors import InputError
from vaeport.runtime.independence import mss_log_weights
from vaeport.train.distributions import LOG_2PI, DiagonalGaussian, StandardNormal


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image (N,) for Bernoulli pixels with probabilities sigmoid(logits)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(logits: torch.Tensor, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log N(x; sigmoid(logits), scale^2) per image (N,), a density in nats."""
    mean = torch.sigmoid(logits)
    per_pixel = 0.5 * ((x - mean) / scale) ** 2 + torch.log(scale) + 0.5 * LOG_2PI
    return per_pixel.flatten(1).sum(1)


def reconstruction_nll(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str, scale: torch.Tensor | None = None
) -> torch.Tensor:
    if likelihood == "bernoulli":
        return bernoulli_nll(logits, x)
    if scale is None:
        raise InputError("expected the Gaussian likelihood's scale, got None")
    return gaussian_nll(logits, x, scale)


@dataclass
class LossTerms:
    loss: torch.Tensor  # the optimized objective: mean(recon + kl_weight * kl)
    recon: torch.Tensor  # mean reconstruction NLL, nats per image
    kl: torch.Tensor  # mean KL, nats per image (0 for the plain autoencoder)
    # DReG only: what the gradient reaching each sample z_k (k, B) must be multiplied by
    z_grad_scale: torch.Tensor | None = None

    @property
    def neg_elbo(self) -> torch.Tensor:
        return self.recon + self.kl


def vae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor | None,
    likelihood: str,
    kl_weight: float,
    scale: torch.Tensor | None = None,
    prior: nn.Module | None = None,
    z: torch.Tensor | None = None,
) -> LossTerms:
    """Batch means of the loss and its parts; `kl_weight` is beta times the warm-up factor. The KL
    is to N(0, I) in closed form, or to a learned `prior` estimated at the posterior samples `z`.

    Sums over the whole batch and divides once (not per image, then mean): the same number
    with fewer kernels on the training hot path.
    """
    n = x.shape[0]
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    else:
        recon = reconstruction_nll(logits, x, likelihood, scale).mean()
    if log_var is None:
        kl = torch.zeros((), device=x.device)
    elif prior is None or isinstance(prior, StandardNormal):
        kl = DiagonalGaussian(mean, log_var).kl_per_dimension().sum() / n
    else:
        kl = DiagonalGaussian(mean, log_var).kl(prior, z).sum() / n
    return LossTerms(recon + kl_weight * kl, recon, kl)


def capacity_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    likelihood: str,
    gamma: float,
    allowed: float,
    scale: torch.Tensor | None = None,
) -> LossTerms:
    """Burgess et al. 2018's controlled-capacity objective: reconstruction + gamma * |KL - C|, the
    batch's mean KL held near the `allowed` C nats (raised over training) instead of pushed to 0."""
    terms = vae_loss(logits, x, mean, log_var, likelihood, 0.0, scale)
    return LossTerms(terms.recon + gamma * (terms.kl - allowed).abs(), terms.recon, terms.kl)


def iwae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    likelihood: str,
    kl_weight: float,
    scale: torch.Tensor | None = None,
    dreg: bool = False,
    prior: nn.Module | None = None,
) -> LossTerms:
    """The IWAE objective (Burda et al. 2016) for k samples z (k, B, D) with decoder logits (k*B, ...).

    loss = -mean_x[logsumexp_k(log p(x|z_k) + w * (log p(z_k) - log q(z_k|x))) - log k] with the
    model's `prior` p(z) (N(0, I) when None); the
    reported recon and KL are those of the first sample and the closed form, as for the ELBO.

    dreg=True gives the same value with doubly reparameterized encoder gradients (Tucker et al.
    2019): q's parameters are held constant inside log q, so the encoder learns only through z, and
    `z_grad_scale` says how to reweight the gradient reaching z_k: by (1 - w) + w * softmax_k(log w),
    which is the DReG estimator w_k^2 at w = 1 and stays unbiased during KL warm-up (w < 1).
    """
    k, n = z.shape[0], z.shape[1]
    x_rep = x.expand(k, *x.shape).reshape(-1, *x.shape[1:])
    log_px_z = -reconstruction_nll(logits, x_rep, likelihood, scale).reshape(k, n)
    q = DiagonalGaussian(mean, log_var)
    prior = prior if prior is not None else StandardNormal(mean.shape[-1])
    log_w = log_px_z + kl_weight * (prior.log_prob(z) - (q.detached() if dreg else q).log_prob(z))
    loss = -(torch.logsumexp(log_w, dim=0) - math.log(k)).mean()
    kl = q.kl(prior, z[0]).mean()  # a learned prior's KL: estimated at the first sample
    z_grad_scale = None
    if dreg:
        z_grad_scale = ((1.0 - kl_weight) + kl_weight * torch.softmax(log_w, dim=0)).detach()
    return LossTerms(loss, -log_px_z[0].mean(), kl, z_grad_scale)


def kl_decomposition(
    z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, dataset_size: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch means of beta-TCVAE's three parts of log q(z|x) - log p(z) (Chen et al. 2018):
    index-code mutual information, total correlation and dimension-wise KL to N(0, I), with q(z)
    and its marginals estimated over the batch by minibatch-stratified sampling
    (runtime/independence.py), which needs the number of training images."""
    if dataset_size is None or isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 1:
        raise InputError(
            "expected the training set's size for --objective btcvae (its total-correlation estimator weighs "
            f"each image by it), got {dataset_size!r}"
        )
    b = z.shape[0]
    log_w = torch.from_numpy(mss_log_weights(b, dataset_size)).to(z)  # (b, b)
    inv_var = torch.exp(-log_var)
    # log q(z_i,d | x_j) for every pair (i, j) of the batch: (b, b, D)
    pairwise = -0.5 * (
        LOG_2PI + log_var.unsqueeze(0) + (z.unsqueeze(1) - mean.unsqueeze(0)) ** 2 * inv_var.unsqueeze(0)
    )
    log_qz = torch.logsumexp(pairwise.sum(-1) + log_w, dim=1)
    log_prod_qz = torch.logsumexp(pairwise + log_w.unsqueeze(-1), dim=1).sum(-1)
    log_qz_x = DiagonalGaussian(mean, log_var).log_prob(z)
    log_pz = StandardNormal(mean.shape[-1]).log_prob(z)
    return (log_qz_x - log_qz).mean(), (log_qz - log_prod_qz).mean(), (log_prod_qz - log_pz).mean()


def btcvae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    likelihood: str,
    beta: float,
    ramp: float,
    dataset_size: int | None,
    scale: torch.Tensor | None = None,
) -> LossTerms:
    """beta-TCVAE: recon + ramp * (MI + beta * TC + dimension-wise KL), `ramp` the KL warm-up
    factor; the reported KL is the closed form, as for the ELBO (MI + TC + dw-KL estimates it)."""
    recon = reconstruction_nll(logits, x, likelihood, scale).mean()
    mi, tc, dw_kl = kl_decomposition(z, mean, log_var, dataset_size)
    kl = DiagonalGaussian(mean, log_var).kl_per_dimension().sum() / x.shape[0]
    return LossTerms(recon + ramp * (mi + beta * tc + dw_kl), recon, kl)
