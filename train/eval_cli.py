"""`vae-eval`: test-set negative ELBO, IWAE-k bound and active units of a run folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from vaeport.runtime.cli_support import OneLineErrors
from vaeport.runtime.errors import require_module


def format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


@click.command(cls=OneLineErrors, epilog="Example: vae-eval runs/digits --k 100")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--k",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Importance samples per image for the IWAE bound.",
)
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="JSON file to write (default RUN_DIR/eval.json)."
)
def main(
    run_dir: Path, k: int, checkpoint: str, batch_size: int, seed: int, data_dir: Path | None, out: Path | None
) -> None:
    """Evaluate a trained run folder on its test split."""
    require_module("torch", "train", "vae-eval")
    import torch

    from vaeport.train.checkpoint import atomic_write_bytes
    from vaeport.train.datasets import load_dataset
    from vaeport.train.evaluate import iwae_nll, latent_statistics, neg_elbo
    from vaeport.train.load import load_run

    model, cfg, record = load_run(run_dir, checkpoint)
    data = load_dataset(cfg.dataset, data_dir or cfg.data_dir, cfg.image_size, cfg.seed)
    test = torch.from_numpy(data.test)
    started = time.perf_counter()
    result: dict[str, object] = {
        "run_dir": str(run_dir),
        "checkpoint": record["checkpoint"],
        "dataset": data.name,
        "test_images": len(test),
        "model": cfg.model.kind,
        **{
            f"test_{key}": value
            for key, value in neg_elbo(model, test, batch_size, torch.Generator().manual_seed(seed)).items()
        },
    }
    if model.variational:
        result["iwae_k"] = k
        result["test_iwae_nll"] = iwae_nll(model, test, k, torch.Generator().manual_seed(seed + 1))
    result.update(latent_statistics(model, test, batch_size))
    result["seconds"] = time.perf_counter() - started

    rows = [
        ("test -ELBO (nats/image)", f"{result['test_neg_elbo']:.3f}"),
        ("  reconstruction", f"{result['test_recon']:.3f}"),
        ("  KL", f"{result['test_kl']:.3f}"),
    ]
    if "test_iwae_nll" in result:
        rows.append((f"IWAE-{k} NLL bound", f"{result['test_iwae_nll']:.3f}"))
    rows.append(("active units", f"{result['active_units']} / {result['latent_dim']}"))
    click.echo(format_table(rows))
    target = out or Path(run_dir) / "eval.json"
    text = json.dumps(result, indent=2) + "\n"
    atomic_write_bytes(target, lambda f: f.write(text.encode()))
    click.echo(f"wrote {target}")
