"""A conv VAE run folder and model folder for the speed benchmarks (weights barely trained:
speed depends on the graph's shape, not on its values)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vaeport.export import export
from vaeport.runtime.errors import InputError
from vaeport.train import TrainConfig, fit
from vaeport.train.datasets import load_dataset

# The conv decoder the runtime benchmarks use (upsample + conv, sub-pixel last stage, 28x28).
CONV_DECODER = {"arch": "conv", "hidden": (32, 64), "latent_dim": 32}


def fashion_subset(root: Path, n: int = 4096) -> str:
    """An `npy:` data set of the first n Fashion-MNIST training images, or of random 28x28 images
    when Fashion-MNIST is absent."""
    path = root / "images.npy"
    try:
        images = load_dataset("fashion-mnist").train[:n, 0]
        np.save(path, np.rint(images * 255).astype(np.uint8))
    except InputError:
        rng = np.random.default_rng(0)
        np.save(path, (rng.random((n, 28, 28)) < 0.3).astype(np.uint8) * 255)
    return f"npy:{path}"


def make_models(root: Path, fp16: bool = False, int8: bool = False, **arch: object) -> tuple[Path, Path, float]:
    """(run folder, model folder, export seconds incl. the gate) for a 1-epoch run on 4096 images."""
    spec = {**CONV_DECODER, **arch}
    root.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(dataset=fashion_subset(root), epochs=1, batch_size=128, **spec)  # type: ignore[arg-type]
    run = fit(cfg, root / "run", quiet=True)
    started = time.perf_counter()
    model = export(run, root / "model", fp16=fp16, int8=int8)
    return run.path, model, time.perf_counter() - started
