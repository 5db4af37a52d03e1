"""Evaluation on the torch side: the per-epoch test ELBO, and the torch backend of
`vaeport.runtime.evaluate` (the estimators vae-eval shares with the ONNX path)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vaeport.runtime.distributions import make_prior as runtime_prior
from vaeport.runtime.evaluate import Backend
from vaeport.train.distributions import DiagonalGaussian, StandardNormal
from vaeport.train.loss import reconstruction_nll
from vaeport.train.vae import VAE


def unit_tensor(x: torch.Tensor) -> torch.Tensor:
    """A batch of images as float32 in [0, 1]: uint8 (dSprites is kept so) is read as value / 255."""
    return x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x


@torch.no_grad()
def neg_elbo(
    model: VAE, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, generator: torch.Generator
) -> dict[str, float]:
    """Mean negative ELBO and its parts over `images` (with their `labels` for a conditional model),
    one posterior sample per image (training metric)."""
    model.eval()
    recon_sum = kl_sum = 0.0
    for start in range(0, len(images), batch_size):
        x = unit_tensor(images[start : start + batch_size])
        y = None if labels is None else labels[start : start + batch_size]
        eps = None
        if model.variational:  # drawn here as the model would draw it, so that the KL can use the same z
            eps = torch.randn((len(x), model.config.latent_dim), generator=generator, device=x.device, dtype=x.dtype)
        logits, mean, log_var = model(x, y, eps=eps)
        recon_sum += float(reconstruction_nll(logits, x, model.config.likelihood, model.scale()).sum())
        if log_var is not None:
            q = DiagonalGaussian(mean, log_var)
            if isinstance(model.prior, StandardNormal):
                kl_sum += float(q.kl_per_dimension().sum())
            else:
                kl_sum += float(q.kl(model.prior, q.sample(eps)).sum())
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
    path of vae-eval and vae-plot samples and scores as the exported model folder will: N(0, I)
    itself, a learned prior through its torch module."""
    if isinstance(model.prior, StandardNormal):
        return runtime_prior(model.config.prior, model.config.latent_dim)
    return TorchPrior(model.prior)


class TorchPrior:
    """A learned torch prior behind the runtime's Prior surface (numpy in, numpy out)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module, self.name, self.dim = module.eval(), module.name, module.dim
        self._noise = runtime_prior("normal", module.dim)

    def noise(self, seed: int, start: int, count: int) -> np.ndarray:
        return self._noise.noise(seed, start, count)

    @torch.no_grad()
    def sample(self, eps: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        return self.module.sample(torch.from_numpy(np.asarray(eps, dtype=np.float32)), temperature).numpy()

    @torch.no_grad()
    def log_prob(self, z: np.ndarray) -> np.ndarray:
        return self.module.log_prob(torch.from_numpy(np.asarray(z, dtype=np.float32))).double().numpy()


def torch_vq_backend(model: Any) -> Any:
    """A VQ-VAE's measures through torch (train/vqvae.py), for runtime/vq_evaluate.py."""
    from vaeport.runtime.vq_evaluate import VQBackend

    model.eval()

    @torch.no_grad()
    def encode(x: np.ndarray) -> np.ndarray:
        return model.autoencoder.encode(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

    @torch.no_grad()
    def decode(codes: np.ndarray) -> np.ndarray:
        return torch.sigmoid(model.autoencoder.decode(torch.from_numpy(codes))).numpy()

    @torch.no_grad()
    def code_nll(codes: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        logits = model.prior(torch.from_numpy(codes), as_labels(y)).double()
        flat = logits.reshape(-1, logits.shape[-1])
        nll = torch.nn.functional.cross_entropy(flat, torch.from_numpy(codes).reshape(-1), reduction="none")
        return nll.reshape(len(codes), -1).sum(1).numpy()

    return VQBackend(encode, decode, code_nll, model.config.codebook_size)
