"""`vae-eval`: test-set measures of a run folder (torch) or a model folder (ONNX, no torch needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from vaeport.runtime.atomic import atomic_write_text
from vaeport.runtime.cli_support import OneLineErrors
from vaeport.runtime.errors import require_module
from vaeport.runtime.files import MANIFEST_FILE


def format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def report_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    if result.get("test_neg_elbo") is not None:
        rows += [
            ("test -ELBO (nats/image)", f"{result['test_neg_elbo']:.3f}"),
            ("  reconstruction", f"{result['test_recon']:.3f}"),
            ("  KL", f"{result['test_kl']:.3f}"),
        ]
    else:
        rows.append(("reconstruction NLL (nats/image)", f"{result['test_recon']:.3f}"))
    if "test_iwae_nll" in result:
        rows.append((f"IWAE-{result['iwae_k']} NLL bound", f"{result['test_iwae_nll']:.3f}"))
    rows.append(("reconstruction MSE (per pixel)", f"{result['test_mse']:.5f}"))
    rows.append(("active units", f"{result['active_units']} / {result['latent_dim']}"))
    return rows


def evaluate_model_folder(folder: Path, k: int, seed: int, data_dir: Path | None, device: str) -> dict[str, Any]:
    """The ONNX path: numpy + onnxruntime (+ the data loaders), no torch."""
    from vaeport.runtime import VAE
    from vaeport.runtime.evaluate import evaluate, onnx_backend
    from vaeport.train.datasets import load_dataset

    vae = VAE.load(folder, device=device)
    info = vae.manifest["training"]
    data = load_dataset(info["dataset"], data_dir, None, info["seed"])
    model = vae.manifest["model"]
    backend = onnx_backend(vae, model["likelihood"], model.get("gaussian_scale"))
    return {
        "path": str(folder),
        "path_kind": "model folder (onnxruntime)",
        "dataset": data.name,
        **evaluate(backend, data.test, k=k, seed=seed),
    }


def evaluate_run_folder(run_dir: Path, k: int, seed: int, data_dir: Path | None, checkpoint: str) -> dict[str, Any]:
    require_module("torch", "train", "vae-eval on a run folder")
    from vaeport.runtime.evaluate import evaluate
    from vaeport.train.datasets import load_dataset
    from vaeport.train.evaluate import torch_backend
    from vaeport.train.load import load_run

    model, cfg, record = load_run(run_dir, checkpoint)
    data = load_dataset(cfg.dataset, data_dir or cfg.data_dir, cfg.image_size, cfg.seed)
    return {
        "path": str(run_dir),
        "path_kind": "run folder (torch)",
        "checkpoint": record["checkpoint"],
        "dataset": data.name,
        **evaluate(torch_backend(model), data.test, k=k, seed=seed),
    }


@click.command(
    cls=OneLineErrors, epilog="Examples:\n\n  vae-eval runs/fmnist --k 100\n\n  vae-eval models/fashion-mnist"
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--k",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Importance samples per image for the IWAE bound (0 skips it).",
)
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Model folders only: where ONNX Runtime runs.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="JSON file to write (default PATH/eval.json)."
)
def main(path: Path, k: int, checkpoint: str, seed: int, data_dir: Path | None, device: str, out: Path | None) -> None:
    """Evaluate a run folder (torch) or an exported model folder (ONNX) on its test split."""
    started = time.perf_counter()
    if (path / MANIFEST_FILE).is_file():
        result = evaluate_model_folder(path, k, seed, data_dir, device)
    else:
        result = evaluate_run_folder(path, k, seed, data_dir, checkpoint)
    result["seconds"] = time.perf_counter() - started
    click.echo(format_table(report_rows(result)))
    target = out or path / "eval.json"
    atomic_write_text(target, json.dumps(result, indent=2) + "\n")
    click.echo(f"wrote {target}")
