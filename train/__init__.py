"""vaeport.train: datasets, models, the VAE loss, the training loop, and the Python API.

    from vaeport.train import TrainConfig, fit, evaluate
    run = fit(TrainConfig(dataset="digits", latent_dim=8, epochs=20), out="runs/digits")
    report = evaluate(run, k=100)

Importing this package does not import torch; `fit` and evaluating a run folder do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaeport.train.config import TrainConfig
    from vaeport.train.evaluation import evaluate
    from vaeport.train.fitting import fit
    from vaeport.train.run_folder import Run

__all__ = ["Run", "TrainConfig", "evaluate", "fit"]

_HOMES = {
    "TrainConfig": "vaeport.train.config",
    "Run": "vaeport.train.run_folder",
    "fit": "vaeport.train.fitting",
    "evaluate": "vaeport.train.evaluation",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'vaeport.train' has no attribute {name!r}")
