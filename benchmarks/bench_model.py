"""A conv VAE run folder and model folder for the speed benchmarks (weights barely trained:
speed depends on the graph's shape, not on its values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaeport.export.pipeline import ExportOptions, export_run
from vaeport.runtime.errors import InputError
from vaeport.train.config import ModelConfig, TrainConfig
from vaeport.train.datasets import ImageData, load_dataset
from vaeport.train.run_folder import prepare_new_run, write_config
from vaeport.train.trainer import Trainer

# The conv decoder the runtime benchmarks use (upsample + conv, sub-pixel last stage, 28x28).
CONV_DECODER = {"arch": "conv", "hidden": (32, 64), "latent_dim": 32}


def fashion_subset(root: Path, n: int = 4096) -> tuple[ImageData, str]:
    """The first n Fashion-MNIST training images, or random 28x28 images saved as .npy when absent."""
    try:
        data = load_dataset("fashion-mnist")
        return ImageData(
            data.name, data.train[:n], data.test[:1024], None, None, data.split, data.source
        ), "fashion-mnist"
    except InputError:
        rng = np.random.default_rng(0)
        path = root / "synthetic.npy"
        np.save(path, (rng.random((n, 28, 28)) < 0.3).astype(np.uint8) * 255)
        return load_dataset(f"npy:{path}"), f"npy:{path}"


def make_models(root: Path, fp16: bool = False, int8: bool = False, **arch: object) -> tuple[Path, Path, float]:
    """(run folder, model folder, export seconds incl. the gate) for a 1-epoch run on 4096 images."""
    import time

    spec = {**CONV_DECODER, **arch}
    root.mkdir(parents=True, exist_ok=True)
    data, dataset = fashion_subset(root)
    cfg = TrainConfig(
        dataset=dataset,
        epochs=1,
        batch_size=128,
        model=ModelConfig((1, 28, 28), spec["latent_dim"], spec["arch"], spec["hidden"]),
    )
    run, model = root / "run", root / "model"
    prepare_new_run(run, force=False)
    write_config(run, cfg, data)
    Trainer(cfg, data, run, show_progress=False).fit()
    started = time.perf_counter()
    export_run(run, model, ExportOptions(fp16=fp16, int8=int8), log=lambda _: None)
    return run, model, time.perf_counter() - started
