"""Helpers shared by the benchmark scripts: environment record, medians, JSON output, tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from vaeport.runtime.atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
# The pytorch/examples VAE as TrainConfig settings: 784-400-20 MLP, Adam 1e-3, batch 128, Bernoulli.
TUTORIAL_MODEL = {
    "dataset": "fashion-mnist",
    "arch": "mlp",
    "hidden": (400,),
    "latent_dim": 20,
    "batch_size": 128,
    "lr": 1e-3,
}


def environment() -> dict[str, Any]:
    versions = {}
    for name in ("vaeport", "torch", "numpy", "onnxruntime", "onnx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    atomic_write_text(path, json.dumps({"environment": environment(), **payload}, indent=2) + "\n")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for j, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def test_examples(
    dataset: str, data_dir: Any, image_size: Any, seed: int, latent_dim: int, classes: int, codebook_size: int = 0
) -> Any:
    """The data set's test images (and labels, for a conditional model of `classes` classes; the
    codebook size of a VQ-VAE) as the Examples export/feeds.py draws the seeded parity inputs from."""
    from vaeport.export.feeds import Examples
    from vaeport.train.datasets import load_dataset

    data = load_dataset(dataset, data_dir, image_size, seed)
    return Examples(data.test, latent_dim, data.test_labels if classes else None, classes, codebook_size)


def generation_rates(
    models: dict[str, Any], n: int, repeats: int, seed: int = 0, chunk_size: int | None = None
) -> dict[str, float]:
    """images/s of each model's vae-generate (uint8 .npy) of n images, the models alternating,
    median of `repeats` (`chunk_size` None: one chunk)."""
    import tempfile
    import time

    from vaeport.runtime.generate import GenerateSpec, generate

    times: dict[str, list[float]] = {name: [] for name in models}
    spec = GenerateSpec(n=n, seed=seed, dtype="uint8", chunk_size=chunk_size or n)
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for name, vae in models.items():
                started = time.perf_counter()
                generate(vae, spec, Path(tmp) / f"{name}-{repeat}")
                times[name].append(time.perf_counter() - started)
    return {name: n / median(t) for name, t in times.items()}
