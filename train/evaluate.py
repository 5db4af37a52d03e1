"""Test-set measures of a trained model: negative ELBO, IWAE-k bound, active units, KL per dim."""

from __future__ import annotations

import math

import torch

from vaeport.train.loss import (
    kl_per_dimension,
    log_normal_diag,
    log_normal_standard,
    reconstruction_nll,
)
from vaeport.train.vae import VAE, reparameterize

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): Cov_x(E_q[z_d]) above this counts as active


@torch.no_grad()
def neg_elbo(model: VAE, images: torch.Tensor, batch_size: int, generator: torch.Generator) -> dict[str, float]:
    """Mean negative ELBO and its parts over `images`, one posterior sample per image."""
    model.eval()
    recon_sum = kl_sum = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        logits, mean, log_var = model(x, generator)
        recon_sum += float(reconstruction_nll(logits, x, model.config.likelihood, model.scale()).sum())
        if log_var is not None:
            kl_sum += float(kl_per_dimension(mean, log_var).sum())
    n = len(images)
    return {"neg_elbo": (recon_sum + kl_sum) / n, "recon": recon_sum / n, "kl": kl_sum / n}


@torch.no_grad()
def iwae_nll(
    model: VAE,
    images: torch.Tensor,
    k: int,
    generator: torch.Generator,
    max_decode: int = 20000,
) -> float:
    """IWAE-k upper bound on -log p(x) (Burda et al. 2016), mean nats per image.

    log p(x) >= logsumexp_k[log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k, z_k ~ q(z|x).
    Images are taken in batches so that at most `max_decode` decodes run at once.
    """
    model.eval()
    batch = max(1, max_decode // k)
    total = 0.0
    for start in range(0, len(images), batch):
        x = images[start : start + batch]  # (B, C, H, W)
        mean, log_var = model.encode(x)
        if log_var is None:
            raise ValueError("the IWAE bound needs a variational model (kind 'vae')")
        eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device)
        z = reparameterize(mean, log_var, eps)  # (k, B, D)
        logits = model.decode(z.reshape(-1, z.shape[-1]))  # (k*B, C, H, W)
        x_rep = x.expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_px_z = -reconstruction_nll(logits, x_rep, model.config.likelihood, model.scale())
        log_w = log_px_z.reshape(k, -1) + log_normal_standard(z) - log_normal_diag(z, mean, log_var)
        log_px = torch.logsumexp(log_w, dim=0) - math.log(k)  # (B,)
        total += float(-log_px.sum())
    return total / len(images)


@torch.no_grad()
def latent_statistics(model: VAE, images: torch.Tensor, batch_size: int) -> dict[str, object]:
    """Active units and mean KL per latent dimension over `images`."""
    model.eval()
    means, kls = [], []
    for start in range(0, len(images), batch_size):
        mean, log_var = model.encode(images[start : start + batch_size])
        means.append(mean)
        if log_var is not None:
            kls.append(kl_per_dimension(mean, log_var))
    all_means = torch.cat(means)
    activity = all_means.var(dim=0, unbiased=False)
    kl_dims = torch.cat(kls).mean(0).tolist() if kls else [0.0] * all_means.shape[1]
    return {
        "active_units": int((activity > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": int(all_means.shape[1]),
        "kl_per_dim": [round(v, 5) for v in kl_dims],
        "mean_activity": [round(float(v), 5) for v in activity],
    }
