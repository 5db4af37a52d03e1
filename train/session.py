"""What `vae-train` does with its options: validate, prepare the run folder, train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vaeport.runtime.errors import InputError
from vaeport.train.checkpoint import LAST
from vaeport.train.config import DEFAULT_HIDDEN, ModelConfig, TrainConfig
from vaeport.train.datasets import ImageData, load_dataset
from vaeport.train.distributed import from_environment
from vaeport.train.run_folder import prepare_new_run, read_config, write_config
from vaeport.train.trainer import Trainer, TrainingInterrupted

__all__ = ["TrainingInterrupted", "resolve_device", "resume_run", "start_run"]


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("expected a CUDA GPU for --device cuda, got none (torch.cuda.is_available() is False)")
    return name


def check_batch(cfg: TrainConfig, data: ImageData) -> None:
    if cfg.batch_size > len(data.train):
        raise InputError(
            f"expected --batch-size at most the {len(data.train)} training images of {data.name}, got {cfg.batch_size}"
        )


def build_config(opts: dict[str, Any], hidden: tuple[int, ...] | None, data: ImageData) -> TrainConfig:
    model = ModelConfig(
        image_shape=data.image_shape,
        latent_dim=opts["latent_dim"],
        arch=opts["arch"],
        hidden=hidden or DEFAULT_HIDDEN[opts["arch"]],
        kind=opts["kind"],
        likelihood=opts["likelihood"],
        activation=opts["activation"],
        depth=opts["depth"],
    )
    return TrainConfig(
        dataset=opts["dataset"],
        data_dir=str(opts["data_dir"]) if opts["data_dir"] else None,
        image_size=opts["image_size"],
        epochs=opts["epochs"],
        batch_size=opts["batch_size"],
        lr=opts["lr"],
        lr_schedule=opts["lr_schedule"],
        beta=opts["beta"],
        objective=opts["objective"],
        samples=opts["samples"],
        kl_warmup_epochs=opts["kl_warmup_epochs"],
        seed=opts["seed"],
        threads=opts["threads"],
        device=resolve_device(opts["device"]),
        model=model,
    )


def start_run(opts: dict[str, Any], hidden: tuple[int, ...] | None) -> list[dict[str, Any]]:
    out: Path = opts["out"]
    if out.exists() and out.is_dir() and any(out.iterdir()) and not opts["force"]:
        prepare_new_run(out, force=False)  # raises the "existing folder" error before any work
    data = load_dataset(opts["dataset"], opts["data_dir"], opts["image_size"], opts["seed"])
    cfg = build_config(opts, hidden, data)
    check_batch(cfg, data)
    ranks = from_environment(torch.device(cfg.device))
    ranks.barrier()  # every rank has validated before rank 0 touches the folder
    if ranks.is_main:
        prepare_new_run(out, force=opts["force"])
        write_config(out, cfg, data)
    ranks.barrier()
    trainer = Trainer(cfg, data, out, show_progress=not opts["quiet"])
    return trainer.fit()


def resume_run(opts: dict[str, Any], explicit: set[str]) -> list[dict[str, Any]]:
    out: Path = opts["out"]
    cfg, _ = read_config(out)
    if not (out / LAST).is_file():
        raise InputError(f"--resume: expected {out / LAST}, got no such file")
    for name in ("epochs", "threads", "data_dir"):
        if name in explicit:
            setattr(cfg, name, str(opts[name]) if name == "data_dir" else opts[name])
    if "device" in explicit:
        cfg.device = resolve_device(opts["device"])
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.seed)
    if data.image_shape != cfg.model.image_shape:
        raise InputError(f"--resume: expected images of shape {cfg.model.image_shape}, got {data.image_shape}")
    trainer = Trainer(cfg, data, out, show_progress=not opts["quiet"])
    trainer.restore(out / LAST)
    history = trainer.fit()
    if "epochs" in explicit and trainer.dist.is_main:
        write_config(out, cfg, data)
    return history
