"""`vae-eval`: test-set measures of a run folder (torch) or a model folder (ONNX, no torch needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from vaeport.runtime.atomic import check_output_file
from vaeport.runtime.cli_support import OneLineErrors, model_folder_options
from vaeport.runtime.evaluate import MAX_K


def format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def vq_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    of = "-log p(x|y)" if result.get("conditional") else "-log p(x)"
    return [
        (f"bound on {of} (nats/image)", f"{result['test_neg_elbo']:.3f}"),
        ("  reconstruction -log p(x|codes)", f"{result['test_recon']:.3f}"),
        ("  codes -log p(codes)", f"{result['test_kl']:.3f}"),
        ("reconstruction MSE (per pixel)", f"{result['test_mse']:.5f}"),
        ("codes used", f"{result['codes_used']} / {result['codebook_size']}"),
        ("codebook perplexity", f"{result['perplexity']:.1f}"),
    ]


def report_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    if result.get("kind") == "vqvae":
        return vq_rows(result)
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
        of = "-log p(x|y)" if result.get("conditional") else "-log p(x)"
        rows.append((f"IWAE-{result['iwae_k']} bound on {of}", f"{result['test_iwae_nll']:.3f}"))
    rows.append(("reconstruction MSE (per pixel)", f"{result['test_mse']:.5f}"))
    rows.append(("active units", f"{result['active_units']} / {result['latent_dim']}"))
    if result.get("total_correlation") is not None:
        rows.append(("total correlation of q(z) (nats)", f"{result['total_correlation']:.3f}"))
    rows.append(("mean |correlation| of latent means", f"{result['mean_abs_correlation']:.3f}"))
    metrics = result.get("disentanglement")
    if metrics:
        rows += [
            (f"MIG ({metrics['factors']})", f"{metrics['mig']:.3f}"),
            ("FactorVAE score", f"{metrics['factor_vae_score']:.3f}"),
            ("beta-VAE score", f"{metrics['beta_vae_score']:.3f}"),
            ("SAP score", f"{metrics['sap_score']:.3f}"),
        ]
    return rows


@click.command(
    cls=OneLineErrors,
    epilog="Examples:\n\n  vae-eval runs/fmnist --k 100\n\n  vae-eval models/fashion-mnist\n\n"
    "  vae-eval runs/dsprites --factors",
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--k",
    type=click.IntRange(min=0, max=MAX_K),
    default=100,
    show_default=True,
    help="Importance samples per image for the IWAE bound (0 skips it).",
)
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where the data set's files are.")
@click.option(
    "--dataset",
    default=None,
    help="Evaluate on this data set instead of the recorded one (needed for a model folder trained on folder: "
    "or npy: data, whose path the manifest does not record).",
)
@click.option(
    "--skip-bad-images/--no-skip-bad-images",
    default=None,
    help="folder: data sets: leave unreadable images out (default: as the model was trained).",
)
@model_folder_options(where="Model folders only: ")
@click.option(
    "--factors",
    is_flag=True,
    help="Also measure disentanglement against the data set's ground-truth factors (dsprites): MIG, FactorVAE, "
    "beta-VAE and SAP scores.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Eval file to write or update (default PATH/eval.json; the run folder's result goes under "
    "'torch', the model folder's under 'onnx').",
)
def main(
    path: Path,
    k: int,
    checkpoint: str,
    seed: int,
    data_dir: Path | None,
    dataset: str | None,
    skip_bad_images: bool | None,
    device: str,
    variant: str,
    factors: bool,
    out: Path | None,
) -> None:
    """Evaluate a run folder (torch) or an exported model folder (ONNX) on its test split."""
    from vaeport.train.evaluation import default_eval_path, evaluate, save_eval

    target = out or default_eval_path(path)
    check_output_file(target)  # before minutes of work, not after
    with click.progressbar(length=1, label="evaluating", file=sys.stderr, show_pos=True) as bar:

        def advance(done: int, total: int) -> None:
            bar.length = total
            bar.update(done)

        result = evaluate(
            path,
            k,
            seed,
            checkpoint=checkpoint,
            data_dir=data_dir,
            dataset=dataset,
            device=device,
            variant=variant,
            skip_bad_images=skip_bad_images,
            progress=advance,
            factors=factors,
        )
    click.echo(format_table(report_rows(result)))
    click.echo(f"wrote {save_eval(target, result)}")
