"""`fit`: the life of a run folder. Start a run from a TrainConfig, or resume one, and train it.

from vaeport.train import TrainConfig, fit
run = fit(TrainConfig(dataset="digits", latent_dim=8, epochs=20), out="runs/digits")
run.metrics[-1]["test_neg_elbo"]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaeport.runtime.errors import InputError
from vaeport.train.checkpoint import LAST
from vaeport.train.config import TrainConfig, resumed_config, total_epochs
from vaeport.train.datasets import ImageData, load_run_data
from vaeport.train.distributed import from_environment
from vaeport.train.posthoc import source_state, start_from
from vaeport.train.run_folder import Run, check_new_run, prepare_new_run, read_config, read_metrics, write_config
from vaeport.train.trainer import Trainer
from vaeport.train.vq_trainer import VQTrainer

EpochCallback = Callable[[dict[str, Any]], None]


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from vaeport.runtime.errors import DeviceError

        raise DeviceError("expected a CUDA GPU for --device cuda, got none (torch.cuda.is_available() is False)")
    return name


def load_data(cfg: TrainConfig) -> ImageData:
    data = load_run_data(cfg)
    if cfg.batch_size > len(data.train):
        raise InputError(
            f"expected --batch-size at most the {len(data.train)} training images of {data.name}, got {cfg.batch_size}"
        )
    cfg.model_config(data.image_shape, data.classes)  # --conditional without labels is refused here
    if cfg.conditional:
        counts = np.bincount(data.train_labels, minlength=len(data.classes))
        empty = [f"{data.classes[c]!r} (index {c})" for c in np.flatnonzero(counts == 0)]
        if empty:
            raise InputError(
                f"{data.name}: expected training images of every class of a conditional model, got none of "
                f"{', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''} (an empty class folder, or a gap in "
                "the labels: the model would learn nothing for it)"
            )
    return data


def fit(
    config: TrainConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    on_epoch: EpochCallback | None = None,
) -> Run:
    """Train `config` into the run folder `out` and return it as a `Run`.

    resume=True continues the run in `out` from its last checkpoint, bit-identical to an
    uninterrupted run; `config` may then be None (the saved one) or equal the saved one except in
    epochs, threads, data_dir and device. force=True replaces an earlier run at `out` (files that
    training did not write there are kept).
    quiet=True shows no progress bar or per-epoch lines; `on_epoch(row)` is called after each
    epoch with its metrics (the row written to metrics.jsonl). Raises `Interrupted` on Ctrl-C
    (last.pt saved), `InputError` on bad input (nothing written), `TrainingError` on a
    non-finite loss. torch's thread count (`threads`) is restored when fit returns."""
    check_fit_arguments(config, out, on_epoch)
    threads = torch.get_num_threads()
    try:
        return fit_run(config, Path(out), resume, force, quiet, on_epoch)
    finally:
        torch.set_num_threads(threads)


def trainer_for(cfg: TrainConfig) -> type[Trainer]:
    """The training loop of the config's family: a VQ-VAE's trains its two stages."""
    return VQTrainer if cfg.kind == "vqvae" else Trainer


def check_distributed(cfg: TrainConfig, distributed: bool) -> None:
    """A learned prior's log-density enters the loss outside the model's forward, which DDP does not
    synchronise, and beta-TCVAE's estimator and the capacity objective's |KL - C| need the whole
    batch: multi-process training takes none of them."""
    if distributed and cfg.prior != "normal":
        raise InputError(
            f"expected --prior normal under torchrun (DDP), got --prior {cfg.prior}: train it in one process"
        )
    if distributed and cfg.kind == "vqvae":
        raise InputError(
            "expected --model vae or ae under torchrun (DDP), got --model vqvae (its codebook's moving averages are "
            "per process): train it in one process"
        )
    if distributed and cfg.objective in ("btcvae", "capacity"):
        why = {"btcvae": "its total correlation is estimated", "capacity": "|KL - C| needs the KL"}[cfg.objective]
        raise InputError(
            f"expected --objective elbo, iwae or iwae-dreg under torchrun (DDP), got --objective {cfg.objective} "
            f"({why} across the whole batch): train it in one process"
        )


def check_fit_arguments(config: Any, out: Any, on_epoch: Any) -> None:
    """fit's arguments, before any work (a wrong one would otherwise fail after an epoch)."""
    if config is not None and not isinstance(config, TrainConfig):
        hint = ": build one with TrainConfig(**settings)" if isinstance(config, dict) else ""
        raise InputError(
            f"expected config to be a TrainConfig (or None with resume=True), got {type(config).__name__}{hint}"
        )
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise InputError(f"expected out to be a run folder path (str or Path), got {out!r}")
    if on_epoch is not None and not callable(on_epoch):
        raise InputError(f"expected on_epoch to be a function of one metrics row (or None), got {on_epoch!r}")


def fit_run(
    config: TrainConfig | None, out: Path, resume: bool, force: bool, quiet: bool, on_epoch: EpochCallback | None
) -> Run:
    """fit's work."""
    if resume:
        if force:
            raise InputError("expected one of --resume or --force, got both")
        return resume_run(config, out, quiet, on_epoch)
    if config is None:
        raise InputError("expected a TrainConfig for a new run (config=None only resumes)")
    check_new_run(out, force)  # an unusable --out is refused before any work
    cfg = config.replace(device=resolve_device(config.device))
    data = load_data(cfg)
    ranks = from_environment(torch.device(cfg.device))
    check_distributed(cfg, ranks.enabled)
    weights = source_state(cfg, cfg.model_config(data.image_shape, data.classes), out) if cfg.prior_of else None
    ranks.barrier()  # every rank has validated before rank 0 touches the folder
    if ranks.is_main:
        kept = prepare_new_run(out, force=force)
        if kept and not quiet:
            print(f"vae-train: --force kept what training did not write: {', '.join(kept)}", file=sys.stderr)
        for note in data.notes if not quiet else []:
            print(f"vae-train: training without labels: {note}", file=sys.stderr)
        write_config(out, cfg, data)
    ranks.barrier()
    trainer = trainer_for(cfg)(cfg, data, out, show_progress=not quiet, on_epoch=on_epoch)
    if weights is not None:
        start_from(trainer.model, weights)
    trainer.fit()
    return Run(out)


def resume_run(config: TrainConfig | None, out: Path, quiet: bool, on_epoch: EpochCallback | None) -> Run:
    saved, record = read_config(out)
    cfg = saved if config is None else resumed_config(saved, config.to_dict())
    trained = len(read_metrics(out))
    if total_epochs(cfg) < trained:
        # Stopping "earlier" cannot undo epochs: the record must stay true to what was trained.
        option = "--epochs + --prior-epochs" if cfg.kind == "vqvae" else "--epochs (TrainConfig.epochs)"
        raise InputError(
            f"--resume: expected {option} of at least {trained} (the run in {out} has "
            f"trained {trained} epochs), got {total_epochs(cfg)}; train a new run for fewer epochs"
        )
    cfg = cfg.replace(device=resolve_device(cfg.device))
    if not (out / LAST).is_file():
        raise InputError(f"--resume: expected {out / LAST}, got no such file")
    data = load_data(cfg)
    shape = list(record.get("data", {}).get("image_shape", data.image_shape))
    if list(data.image_shape) != shape:
        raise InputError(f"--resume: expected images of shape {shape} as before, got {list(data.image_shape)}")
    check_distributed(cfg, from_environment(torch.device(cfg.device)).enabled)
    trainer = trainer_for(cfg)(cfg, data, out, show_progress=not quiet, on_epoch=on_epoch)
    trainer.restore(out / LAST)
    trainer.fit()
    if cfg != saved and trainer.dist.is_main:
        write_config(out, cfg, data)
    return Run(out)
