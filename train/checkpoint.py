"""Checkpoints: written to a temporary name then renamed, read back with weights_only=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vaeport.runtime.atomic import atomic_write
from vaeport.runtime.errors import InputError
from vaeport.train.config import ModelConfig
from vaeport.train.run_folder import BEST, LAST  # noqa: F401 (the checkpoint names, defined with the run folder)

CHECKPOINT_FORMAT = "vaeport-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save `state` (model, optimizer, rng, progress, config) atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **state}
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Load a vaeport checkpoint safely (no pickled code) and check that it is one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"expected a checkpoint at {path}, got no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: expected a vaeport checkpoint, got an unreadable file ({reason})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: expected a vaeport checkpoint, got a file of another kind")
    if state.get("format_version") != CHECKPOINT_VERSION:
        raise InputError(
            f"{path}: expected checkpoint format version {CHECKPOINT_VERSION}, got {state.get('format_version')!r}"
        )
    return state


def model_config_of(state: dict[str, Any], path: Path) -> ModelConfig:
    """The ModelConfig a checkpoint was trained with (its own entry, or the nested config of
    vaeport 0.1's first checkpoints)."""
    try:
        data = state["model_config"] if "model_config" in state else state["config"]["model"]
        return ModelConfig.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: expected a vaeport checkpoint with its model configuration, got none") from exc
