"""Rebuild a trained model from a run folder (used by vae-eval and vae-export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaeport.runtime.errors import InputError
from vaeport.train.checkpoint import BEST, LAST, load_checkpoint, model_config_of
from vaeport.train.config import TrainConfig
from vaeport.train.families import build_model
from vaeport.train.run_folder import read_config
from vaeport.train.vae import VAE

CHECKPOINTS = {"best": BEST, "last": LAST}


def load_run(run_dir: Path, which: str = "best") -> tuple[VAE, TrainConfig, dict[str, Any]]:
    """(model in eval mode on CPU, its TrainConfig, the run record) for a run folder."""
    run_dir = Path(run_dir)
    cfg, record = read_config(run_dir)
    path = run_dir / CHECKPOINTS[which]
    if which == "best" and not path.is_file():
        path = run_dir / LAST  # a run interrupted in its first epoch has no best yet
    state = load_checkpoint(path)
    model = build_model(model_config_of(state, path))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(f"{path}: expected weights matching its config, got others ({reason})") from exc
    model.eval()
    record = {
        **record,
        "checkpoint": path.name,  # relative to the run folder: nothing machine-specific travels on
        "epochs_trained": state["progress"]["epoch"],
        "history": state["progress"]["history"],
    }
    return model, cfg, record
