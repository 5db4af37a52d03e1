"""Evaluation on the torch side: the per-epoch test ELBO, and the torch backend of
`vaeport.runtime.evaluate` (the estimators vae-eval shares with the ONNX path)."""

from __future__ import annotations

import numpy as np
import torch

from vaeport.runtime.distributions import make_prior as runtime_prior
from vaeport.runtime.evaluate import Backend
from vaeport.train.distributions import DiagonalGaussian
from vaeport.train.loss import reconstruction_nll
from vaeport.train.vae import VAE


@torch.no_grad()
def neg_elbo(
    model: VAE, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, generator: torch.Generator
) -> dict[str, float]:
    """Mean negative ELBO and its parts over `images` (with their `labels` for a conditional model),
    one posterior sample per image (training metric)."""
    model.eval()
    recon_sum = kl_sum = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        y = None if labels is None else labels[start : start + batch_size]
        logits, mean, log_var = model(x, y, generator=generator)
        recon_sum += float(reconstruction_nll(logits, x, model.config.likelihood, model.scale()).sum())
        if log_var is not None:
            kl_sum += float(DiagonalGaussian(mean, log_var).kl_per_dimension().sum())
    n = len(images)
    return {"neg_elbo": (recon_sum + kl_sum) / n, "recon": recon_sum / n, "kl": kl_sum / n}


def as_labels(y: np.ndarray | None) -> torch.Tensor | None:
    return None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64))


def torch_backend(model: VAE) -> Backend:
    """log p(x|z[,y]) from the decoder's logits (numerically stable), summed in float64."""
    model.eval()

    @torch.no_grad()
    def encode(x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        mean, log_var = model.encode(torch.from_numpy(np.array(x, dtype=np.float32)), as_labels(y))
        return mean.numpy(), None if log_var is None else log_var.numpy()

    @torch.no_grad()
    def log_likelihood(z: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        logits = model.decode(torch.from_numpy(z), as_labels(y)).double()
        scale = model.scale()
        nll = reconstruction_nll(
            logits,
            torch.from_numpy(np.array(x, dtype=np.float64)),
            model.config.likelihood,
            None if scale is None else scale.double(),
        )
        return -nll.numpy()

    @torch.no_grad()
    def decode_mean(z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        return torch.sigmoid(model.decode(torch.from_numpy(z), as_labels(y))).numpy()

    return Backend(encode=encode, log_likelihood=log_likelihood, decode_mean=decode_mean, prior=numpy_prior(model))


def numpy_prior(model: VAE):
    """The model's prior with the runtime's numpy surface (noise, sample, log_prob), so the torch
    path of vae-eval and vae-plot samples and scores exactly as the exported model folder will."""
    return runtime_prior(model.config.prior, model.config.latent_dim)
