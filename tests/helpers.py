"""Build small trained run folders and model folders for tests (a few seconds each)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.export import export
from vaeport.train import TrainConfig, fit
from vaeport.train.datasets import load_dataset


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
    **settings: Any,
) -> Path:
    n_train = len(load_dataset(dataset, data_dir=data_dir, seed=0).train)
    cfg = TrainConfig(
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        epochs=epochs,
        batch_size=min(64, n_train),
        lr=3e-3,
        threads=1,
        kind=kind,
        arch=arch,
        hidden=hidden,
        latent_dim=latent_dim,
        likelihood=likelihood,
        **settings,
    )
    return fit(cfg, run_dir, quiet=True).path


def export_manifest(run: Path, out: Path, **options: Any) -> dict[str, Any]:
    """Export `run` to `out` and return the manifest written."""
    export(run, out, **options)
    return json.loads((out / "vae.json").read_text())


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write `array` (uint8) as an IDX file (the (Fashion-)MNIST format), gzipped by default."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    Path(path).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)


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
