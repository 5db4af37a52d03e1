"""`vae-train`: train a VAE (or the plain autoencoder baseline) into a run folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from vaeport.runtime.cli_support import EXIT_INTERRUPTED, OneLineErrors
from vaeport.runtime.errors import InputError, require_module

RESUMABLE_OPTIONS = {"out", "resume", "epochs", "threads", "quiet", "data_dir", "device"}


def parse_hidden(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"expected --hidden as comma-separated integers like 512,256, got {text!r}") from None


@click.command(
    cls=OneLineErrors,
    epilog="Example: vae-train --dataset digits --arch mlp --latent-dim 8 --epochs 20 --out runs/digits",
)
@click.option(
    "--dataset", default="digits", show_default=True, help="digits | fashion-mnist | mnist | folder:PATH | npy:PATH"
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder searched first for IDX files (then $VAEPORT_DATA, /usr/share/datasets).",
)
@click.option(
    "--image-size", type=click.IntRange(min=1), default=None, help="folder: resize images to this square size."
)
@click.option(
    "--model",
    "kind",
    type=click.Choice(["vae", "ae"]),
    default="vae",
    show_default=True,
    help="vae, or ae: the plain autoencoder baseline (no KL, deterministic code).",
)
@click.option("--arch", type=click.Choice(["mlp", "conv"]), default="mlp", show_default=True)
@click.option("--latent-dim", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--hidden", default=None, help="mlp: hidden widths (default 400); conv: channels per stage (default 32,64,128)."
)
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True, help="conv: 3x3 convs per stage.")
@click.option("--activation", type=click.Choice(["relu", "leaky_relu", "silu"]), default="relu", show_default=True)
@click.option("--likelihood", type=click.Choice(["bernoulli", "gaussian"]), default="bernoulli", show_default=True)
@click.option(
    "--beta", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Weight of the KL term (beta-VAE)."
)
@click.option(
    "--kl-warmup-epochs",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Ramp the KL weight linearly from 0 over this many epochs.",
)
@click.option(
    "--objective",
    type=click.Choice(["elbo", "iwae", "iwae-dreg"]),
    default="elbo",
    show_default=True,
    help="Train on the ELBO, the importance-weighted bound (IWAE), or the IWAE bound with doubly "
    "reparameterized encoder gradients (iwae-dreg).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Posterior samples per image for --objective iwae and iwae-dreg.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch intra-op threads (default: torch's choice)."
)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder to write.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="Delete an existing run folder at --out and start over.")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@click.pass_context
def main(ctx: click.Context, **opts: object) -> None:
    """Train a VAE and write checkpoints and metrics to a run folder."""
    require_module("torch", "train", "vae-train")
    from vaeport.train.session import TrainingInterrupted, resume_run, start_run

    explicit = {name for name in opts if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    try:
        if opts["resume"]:
            if opts["force"]:
                raise InputError("expected one of --resume or --force, got both")
            fixed = sorted(explicit - RESUMABLE_OPTIONS)
            if fixed:
                names = ", ".join("--" + n.replace("_", "-") for n in fixed)
                raise InputError(
                    f"--resume continues the saved configuration; drop {names} "
                    "(only --epochs, --threads, --data-dir and --device may change)"
                )
            history = resume_run(opts, explicit)
        else:
            history = start_run(opts, parse_hidden(opts["hidden"]))  # type: ignore[arg-type]
    except TrainingInterrupted as exc:
        click.echo(f"vae-train: {exc}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    last = history[-1]
    click.echo(
        f"done: {len(history)} epochs, test -ELBO {last['test_neg_elbo']:.3f} nats/image; run folder {opts['out']}"
    )
