"""Build small trained run folders for tests (a few seconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaeport.train.config import ModelConfig, TrainConfig
from vaeport.train.datasets import load_dataset
from vaeport.train.run_folder import prepare_new_run, write_config
from vaeport.train.trainer import Trainer


def make_run(
    run_dir: Path,
    dataset: str = "digits",
    arch: str = "mlp",
    kind: str = "vae",
    hidden: tuple[int, ...] = (32,),
    latent_dim: int = 4,
    epochs: int = 1,
    data_dir: Path | None = None,
    likelihood: str = "bernoulli",
) -> Path:
    data = load_dataset(dataset, data_dir=data_dir, seed=0)
    cfg = TrainConfig(
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        epochs=epochs,
        batch_size=min(64, len(data.train)),
        lr=3e-3,
        threads=1,
        model=ModelConfig(data.image_shape, latent_dim, arch, hidden, kind, likelihood),
    )
    prepare_new_run(run_dir, force=False)
    write_config(run_dir, cfg, data)
    Trainer(cfg, data, run_dir, show_progress=False).fit()
    return run_dir


def write_rgb_npy(path: Path, n: int = 80, side: int = 32) -> Path:
    """n RGB images with a coloured square each, as an .npy data set."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, 3, side, side), dtype=np.uint8)
    for i in range(n):
        r, c, s = rng.integers(0, side // 2, size=3)
        images[i, rng.integers(0, 3), r : r + s + 4, c : c + s + 4] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, images)
    return path
