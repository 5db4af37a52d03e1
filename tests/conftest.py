"""Shared fixtures: small real data sets written on the fly, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vaeport.export import export

from .helpers import make_run, write_idx


def blob_images(n: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images of one bright square each (class = which quadrant), plus labels."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side), dtype=np.uint8)
    labels = rng.integers(0, 4, size=n)
    half = side // 2
    for i, label in enumerate(labels):
        r0, c0 = (label // 2) * half, (label % 2) * half
        size = rng.integers(2, half + 1)
        images[i, r0 : r0 + size, c0 : c0 + size] = rng.integers(128, 256)
    return images, labels.astype(np.uint8)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the network or the user's cache."""
    monkeypatch.setenv("VAEPORT_OFFLINE", "1")
    monkeypatch.setenv("VAEPORT_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("VAEPORT_DATA", raising=False)


def write_idx_set(folder: Path, n_train: int = 96, n_test: int = 32, side: int = 28) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = blob_images(n, side, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A tiny MNIST-shaped IDX data set (96 train, 32 test, 28x28) in a temporary folder."""
    return write_idx_set(tmp_path / "idx")


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small conv VAE on digits, exported with all variants."""
    root = tmp_path_factory.mktemp("rt")
    run = make_run(root / "run", arch="conv", hidden=(8, 16), latent_dim=4, epochs=2)
    return export(run, root / "model", fp16=True, int8=True, require_variants=True)


@pytest.fixture(scope="session")
def ae_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rt-ae")
    run = make_run(root / "run", arch="mlp", kind="ae", hidden=(16,), latent_dim=3)
    return export(run, root / "model")


@pytest.fixture(scope="session")
def cvae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small conditional conv VAE on digits (labels 0-9), trained on the IWAE bound."""
    root = tmp_path_factory.mktemp("cvae")
    return make_run(
        root / "run", arch="conv", hidden=(8, 16), latent_dim=4, epochs=3, conditional=True, objective="iwae", samples=2
    )


@pytest.fixture(scope="session")
def cvae_model(cvae_run: Path) -> Path:
    """cvae_run exported with every variant."""
    return export(cvae_run, cvae_run.parent / "model", fp16=True, int8=True, require_variants=True)


VQ_SETTINGS = dict(
    kind="vqvae",
    arch="conv",
    hidden=(16, 32),
    latent_dim=8,
    codebook_size=16,
    prior_width=32,
    prior_layers=2,
    prior_heads=2,
)


@pytest.fixture(scope="session")
def vq_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small class-conditional VQ-VAE on digits (a 4 x 4 grid of 16 codes): 2 epochs of its
    autoencoder, 3 of its prior."""
    root = tmp_path_factory.mktemp("vq")
    return make_run(root / "run", epochs=2, prior_epochs=3, conditional=True, **VQ_SETTINGS)


@pytest.fixture(scope="session")
def vq_model(vq_run: Path) -> Path:
    return export(vq_run, vq_run.parent / "model")


@pytest.fixture(scope="session")
def vq_unconditional_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vq-u")
    run = make_run(root / "run", epochs=1, prior_epochs=1, **VQ_SETTINGS)
    return export(run, root / "model")
