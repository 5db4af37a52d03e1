"""`vae-train`: train a VAE (or the plain autoencoder baseline) into a run folder.

Every training option is generated from `TrainConfig`'s fields (name, default, choices, minimum,
help) by train/settings.py, so the CLI and the Python API cannot drift apart.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from vaeport.runtime.cli_support import OneLineErrors
from vaeport.runtime.errors import require_module
from vaeport.train.config import TrainConfig
from vaeport.train.settings import dataclass_options, option_name


def config_args(config: TrainConfig) -> list[str]:
    """The vae-train flags that give `config` (settings left at their defaults are omitted)."""
    default, arch_default = TrainConfig(), TrainConfig(arch=config.arch)
    args: list[str] = []
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if value == getattr(arch_default if f.name == "hidden" else default, f.name):
            continue
        if isinstance(value, bool):
            args.append(option_name(f))
        else:
            args += [option_name(f), ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return args


@click.command(
    cls=OneLineErrors,
    epilog="Examples:\n\n  vae-train --dataset digits --arch mlp --latent-dim 8 --epochs 20 --out runs/digits\n\n"
    "  vae-train --out runs/digits --resume --epochs 40   # continue, bit-identical to an uninterrupted run",
)
@dataclass_options(TrainConfig)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder to write.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its last checkpoint (options equal to the saved ones may be repeated).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Start over in an existing run folder at --out (its config, metrics and checkpoints are replaced; "
    "files training did not write are kept).",
)
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@click.pass_context
def main(ctx: click.Context, out: Path, resume: bool, force: bool, quiet: bool, **settings: Any) -> None:
    """Train a VAE and write checkpoints and metrics to a run folder."""
    require_module("torch", "train", "vae-train")
    from vaeport.train.config import resumed_config
    from vaeport.train.fitting import fit
    from vaeport.train.run_folder import read_config

    if resume:
        # Only the options given on the command line are compared with the saved configuration.
        source = ctx.get_parameter_source
        given = {name: v for name, v in settings.items() if source(name) == ParameterSource.COMMANDLINE}
        config = None if force else resumed_config(read_config(out)[0], given)
        run = fit(config, out, resume=True, force=force, quiet=quiet)
    else:
        run = fit(TrainConfig(**settings), out, force=force, quiet=quiet)
    skipped = run.record["data"].get("skipped_images") or []
    if skipped:
        click.echo(f"vae-train: skipped {len(skipped)} unreadable image(s): {'; '.join(skipped[:3])}", err=True)
    last = run.metrics[-1]
    measure = "test -ELBO" if run.config.kind == "vae" else "test reconstruction NLL"  # an AE has no ELBO
    value = last["test_neg_elbo"] if run.config.kind == "vae" else last["test_recon"]
    click.echo(f"done: {len(run.metrics)} epochs, {measure} {value:.3f} nats/image; run folder {out}")
