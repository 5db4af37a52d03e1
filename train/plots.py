"""The pictures that explain a VAE (matplotlib): latent spaces, random decodes, reconstructions,
interpolations, latent traversals, a 2-D manifold, training curves and a conditional model's
class grid.

Every function takes a "model" with the surface of `vaeport.runtime.VAE` (encode, decode,
latent_dim, image_shape, variational, prior), so the same code draws a run folder (torch) or a
model folder (ONNX Runtime). Samples come from the model's own prior.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from vaeport.runtime.distributions import Prior
from vaeport.runtime.errors import InputError
from vaeport.runtime.evaluate import ACTIVE_UNIT_THRESHOLD
from vaeport.runtime.png import grid
from vaeport.runtime.sampling import slerp


class ModelLike(Protocol):
    latent_dim: int
    image_shape: tuple[int, int, int]
    variational: bool
    prior: Prior

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...
    def decode(self, z: np.ndarray) -> np.ndarray: ...


def prior_samples(model: ModelLike, n: int, seed: int) -> np.ndarray:
    """Latents 0..n-1 of the model's prior under `seed` (what vae-generate draws)."""
    return model.prior.sample(model.prior.noise(seed, 0, n))


def show(ax: Any, image: np.ndarray, title: str | None = None) -> None:
    """Draw a [C,H,W] image in [0, 1]."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image.transpose(1, 2, 0).clip(0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, str]:
    """The codes themselves when D=2, else their first two principal components."""
    if codes.shape[1] == 2:
        return codes, "z"
    centered = codes - codes.mean(0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[:2].T, "PCA of z"


def latent_spaces(models: dict[str, ModelLike], images: np.ndarray, labels: np.ndarray | None) -> Figure:
    """Test codes of each model, 2-D, coloured by class; the prior's 1- and 2-sigma circles for VAEs."""
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 5), squeeze=False)
    for ax, (name, model) in zip(axes[0], models.items(), strict=True):
        codes, how = project_2d(model.encode(images)[0])
        scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
        if model.variational:
            for radius in (1, 2):
                ax.add_patch(plt.Circle((0, 0), radius, fill=False, ls="--", color="k", lw=0.8))
        ax.set_title(f"{name}: {how}")
        ax.set_aspect("equal", adjustable="datalim")
    if labels is not None:
        fig.colorbar(scatter, ax=axes[0].tolist(), shrink=0.8, label="class")
    return fig


def random_decodes(models: dict[str, ModelLike], images: np.ndarray, n: int = 64, seed: int = 0) -> Figure:
    """AE: points drawn uniformly in its codes' bounding box; VAE: z ~ N(0, I)."""
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 5), squeeze=False)
    for ax, (name, model) in zip(axes[0], models.items(), strict=True):
        if model.variational:
            z, how = prior_samples(model, n, seed), "z ~ p(z)" if model.prior.name != "normal" else "z ~ N(0, I)"
        else:
            codes = model.encode(images)[0]
            lo, hi = codes.min(0), codes.max(0)
            z = np.random.default_rng(seed).uniform(lo, hi, size=(n, model.latent_dim)).astype(np.float32)
            how = "z uniform in the codes' bounding box"
        show(ax, grid(model.decode(z)), f"{name}: {how}")
    return fig


def class_grid(model: Any, rows: int = 8, seed: int = 0) -> Figure:
    """A conditional model's samples: each row one latent z ~ p(z), each column one class (the
    style held fixed, the class varied)."""
    classes = model.classes
    if not classes:
        raise InputError("expected a conditional model (one with classes) for the class grid, got an unconditional one")
    k = len(classes)
    z = prior_samples(model, rows, seed)
    images = model.decode(np.repeat(z, k, 0), label=np.tile(np.arange(k), rows))
    fig, axes = plt.subplots(rows, k, figsize=(1.05 * k, 1.1 * rows), squeeze=False)
    for i in range(rows):
        for j in range(k):
            show(axes[i, j], images[i * k + j], classes[j] if i == 0 else None)
        axes[i, 0].set_ylabel(f"z{i + 1}", rotation=0, labelpad=12)
    fig.suptitle("the same z in every row, the class in every column", fontsize=11)
    return fig


def reconstructions(model: ModelLike, images: np.ndarray, n: int = 12) -> Figure:
    """Originals above, reconstructions (posterior means) below."""
    x = images[:n]
    rec = model.decode(model.encode(x)[0])
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.5))
    for i in range(n):
        show(axes[0, i], x[i])
        show(axes[1, i], rec[i])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("recon.")
    return fig


def interpolations(model: ModelLike, images: np.ndarray, pairs: list[tuple[int, int]], steps: int = 10) -> Figure:
    """For each pair of test images: linear and spherical paths between their latent means."""
    t = np.linspace(0, 1, steps)
    fig, axes = plt.subplots(2 * len(pairs), steps, figsize=(1.1 * steps, 2.4 * len(pairs)), squeeze=False)
    means = model.encode(images[[i for pair in pairs for i in pair]])[0].astype(np.float64)
    for row, _ in enumerate(pairs):
        a, b = means[2 * row], means[2 * row + 1]
        paths = {"linear": (1 - t)[:, None] * a + t[:, None] * b, "slerp": slerp(a, b, t)}
        for j, (name, path) in enumerate(paths.items()):
            frames = model.decode(path.astype(np.float32))
            for k in range(steps):
                show(axes[2 * row + j, k], frames[k])
            axes[2 * row + j, 0].set_ylabel(name)
    return fig


def latent_order(model: ModelLike, images: np.ndarray) -> list[tuple[int, float, float]]:
    """The active latent dimensions (posterior means varying by more than 0.01 over `images`), as
    (dimension, KL in nats, variance of the means), most informative first: by the mean KL to
    N(0, 1) where the prior is N(0, I), else (a learned prior, an autoencoder) by the variance."""
    mean, log_var = model.encode(images)
    activity = mean.astype(np.float64).var(axis=0)
    if log_var is not None and model.prior.name == "normal":
        kl = (0.5 * (mean.astype(np.float64) ** 2 + np.exp(log_var) - 1.0 - log_var)).mean(axis=0)
    else:
        kl = np.full(len(activity), np.nan)
    key = activity if np.isnan(kl).all() else kl
    order = [int(d) for d in np.argsort(-key, kind="stable") if activity[d] > ACTIVE_UNIT_THRESHOLD]
    return [(d, float(kl[d]), float(activity[d])) for d in order]


def traversals(model: ModelLike, images: np.ndarray, base: int = 0, steps: int = 9, rows: int = 10) -> Figure:
    """For each active dimension (at most `rows`, most informative first): decodes of the code of
    images[base] with that dimension swept over [-3, 3] (N(0, I) prior), or over its mean +- 3
    standard deviations over `images` (a learned prior or an autoencoder, whose codes have their
    own scale), the other dimensions held."""
    if not 0 <= base < len(images):
        raise InputError(f"expected a base image index in 0..{len(images) - 1}, got {base}")
    order = latent_order(model, images)[:rows]
    if not order:
        raise InputError("expected at least one active latent dimension to traverse, got none (the codes are constant)")
    means = model.encode(images)[0].astype(np.float64)
    fig, axes = plt.subplots(len(order), steps, figsize=(1.0 * steps, 1.05 * len(order)), squeeze=False)
    for row, (d, kl, activity) in enumerate(order):
        if model.prior.name == "normal" and model.variational:
            values = np.linspace(-3.0, 3.0, steps)
        else:
            centre, spread = means[:, d].mean(), 3.0 * np.sqrt(activity)
            values = np.linspace(centre - spread, centre + spread, steps)
        z = np.repeat(means[base : base + 1], steps, axis=0)
        z[:, d] = values
        frames = model.decode(z.astype(np.float32))
        for k in range(steps):
            show(axes[row, k], frames[k], f"{values[k]:+.1f}" if row == 0 else None)
        axes[row, 0].set_ylabel(f"z{d}" + ("" if np.isnan(kl) else f"\nKL {kl:.2f}"), fontsize=9)
    return fig


def correlation_picture(model: ModelLike, images: np.ndarray, total_correlation: float | None = None) -> Figure:
    """The correlation matrix of the posterior means over `images`, dimensions in latent order
    (most informative first, inactive ones last), with the total correlation in the title."""
    from vaeport.runtime.independence import latent_correlation, mean_abs_correlation

    means = model.encode(images)[0]
    active = [d for d, _, _ in latent_order(model, images)]
    order = active + [d for d in range(means.shape[1]) if d not in active]
    corr = latent_correlation(means)[np.ix_(order, order)]
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    shown = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    ticks = range(len(order))
    ax.set_xticks(ticks, [f"z{d}" for d in order], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [f"z{d}" for d in order], fontsize=7)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    mean_r = mean_abs_correlation(corr, np.arange(len(order)) < len(active))
    title = f"correlation of posterior means (active dimensions: mean |r| {mean_r:.2f})"
    if total_correlation is not None:
        title += f"\ntotal correlation of q(z) over {len(images):,} test images: {total_correlation:.2f} nats"
    ax.set_title(title, fontsize=10)
    if len(active) < len(order):
        ax.axhline(len(active) - 0.5, color="k", lw=0.8)
        ax.axvline(len(active) - 0.5, color="k", lw=0.8)
    return fig


def manifold(model: ModelLike, size: int = 15) -> Figure:
    """Decodes of a grid over the 2-D prior's noise quantiles 5%..95% (needs latent_dim == 2)."""
    if model.latent_dim != 2:
        raise InputError(f"expected a model with latent_dim 2 for the manifold picture, got {model.latent_dim}")
    q = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, size)], dtype=np.float32)
    z = model.prior.sample(np.array([[x, y] for y in q[::-1] for x in q], dtype=np.float32))
    fig, ax = plt.subplots(figsize=(7, 7))
    show(ax, grid(model.decode(z), columns=size, pad=0), "decoded 2-D latent grid (prior quantiles 5%-95%)")
    return fig


def training_curves(history: list[dict[str, Any]]) -> Figure:
    """Reconstruction, KL and negative ELBO per epoch (train and test)."""
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, title in zip(
        axes, ("recon", "kl", None), ("reconstruction (nats)", "KL (nats)", "-ELBO (nats)"), strict=True
    ):
        if key is None:
            train = [row["train_recon"] + row["train_kl"] for row in history]
            test = [row["test_neg_elbo"] for row in history]
        else:
            train = [row[f"train_{key}"] for row in history]
            test = [row[f"test_{key}"] for row in history]
        ax.plot(epochs, train, label="train")
        ax.plot(epochs, test, label="test")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    return fig


def vq_class_grid(model: Any, rows: int = 8, seed: int = 0) -> Figure:
    """A class-conditional VQ-VAE's samples: row i draws with the uniforms of sample i in every
    class (column), so a row shows what one stream of draws gives in each class."""
    classes = model.classes
    if not classes:
        raise InputError("expected a class-conditional VQ-VAE for the class grid, got an unconditional one")
    k = len(classes)
    images = np.stack([model.sample(rows, seed=seed, label=c) for c in range(k)], axis=1)  # (rows, k, C, H, W)
    fig, axes = plt.subplots(rows, k, figsize=(1.05 * k, 1.1 * rows), squeeze=False)
    for i in range(rows):
        for j in range(k):
            show(axes[i, j], images[i, j], classes[j] if i == 0 else None)
    fig.suptitle("samples of the prior over the codes, one class per column", fontsize=11)
    return fig


def reconstruction_rows(models: dict[str, Any], images: np.ndarray, n: int = 12) -> Figure:
    """Test images above, then each model's reconstruction (`reconstruct`: the posterior mean of a
    VAE, the code of an autoencoder, the code grid of a VQ-VAE), one row per model."""
    x = images[:n]
    rows = [("input", x), *((name, model.reconstruct(x)) for name, model in models.items())]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.25 * len(rows)), squeeze=False)
    for r, (name, shown) in enumerate(rows):
        for i in range(n):
            show(axes[r, i], shown[i])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", labelpad=8)
    return fig


def vq_training_curves(history: list[dict[str, Any]]) -> Figure:
    """A VQ-VAE's two stages per epoch: reconstruction (the first stage trains it), -log p(codes)
    (uniform during the first stage, then the learned prior's) and their sum, the bound."""
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = (
        ("test_recon", "train_recon", "reconstruction -log p(x|codes) (nats)"),
        ("test_kl", None, "codes -log p(codes) (nats)"),
        ("test_neg_elbo", None, "bound on -log p(x) (nats)"),
    )
    for ax, (test_key, train_key, title) in zip(axes, panels, strict=True):
        if train_key is not None:
            pairs = [(row["epoch"], row[train_key]) for row in history if row.get(train_key) is not None]
            ax.plot(*zip(*pairs, strict=True), label="train")
        ax.plot(epochs, [row[test_key] for row in history], label="test")
        first_prior = next((row["epoch"] for row in history if row.get("stage") == "prior"), None)
        if first_prior is not None:
            ax.axvline(first_prior - 0.5, color="grey", linestyle=":", label="prior's stage")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    return fig
