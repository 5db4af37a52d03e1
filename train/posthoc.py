"""A learned prior for a VAE that is already trained: `vae-train --prior flow --prior-of RUN`.

The new run starts from RUN's last checkpoint, freezes its encoder and decoder (and a Gaussian
likelihood's scale) and trains only the prior, on the run's own objective. With the encoder and
decoder fixed, the only term of the ELBO that depends on p(z) is E_q(z|x)[log p(z)]: the prior is
fitted to the aggregate posterior by maximum likelihood (Xu et al. 2019 fit a RealNVP prior this
way); the IWAE bound weighs the same term by the importance weights. Same code, same decoder: the
model's reconstructions do not change, its samples and its likelihood do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from vaeport.runtime.errors import InputError
from vaeport.train.checkpoint import LAST, load_checkpoint, model_config_of
from vaeport.train.config import ModelConfig, TrainConfig, show
from vaeport.train.settings import option_name

PRIOR_FIELDS = ("prior", "flow_layers", "flow_hidden")  # what the new run may change in the model
DATA_FIELDS = ("dataset", "image_size", "holdout")  # the images the encoder was trained on
PRIOR_PREFIX = "prior."


def frozen(name: str) -> bool:
    """Parameters a prior-only run does not train: everything but the prior's."""
    return not name.startswith(PRIOR_PREFIX)


def freeze_autoencoder(model: nn.Module) -> None:
    """Stop gradients to the encoder, the decoder and the likelihood's scale."""
    for name, parameter in model.named_parameters():
        if frozen(name):
            parameter.requires_grad_(False)


def source_state(cfg: TrainConfig, model_config: ModelConfig, out: Path) -> dict[str, Any]:
    """RUN's model weights (its prior left out), after checking that RUN is the model `cfg` describes:
    a VAE with the same data and the same encoder and decoder, and not the new run's folder `out`.
    One InputError naming the setting and both values otherwise, before anything is written."""
    source = Path(str(cfg.prior_of))
    if source.resolve() == Path(out).resolve():
        raise InputError(f"--prior-of {source}: expected another folder than --out (a new run there would delete it)")
    path = source / LAST
    if not path.is_file():
        raise InputError(f"--prior-of {source}: expected a run folder with {LAST}, got no such file")
    state = load_checkpoint(path)
    theirs = model_config_of(state, path)
    mine = model_config.to_dict()
    for name, value in theirs.to_dict().items():
        if name not in PRIOR_FIELDS and mine.get(name) != value:
            raise InputError(
                f"--prior-of {source}: expected the run's {name} ({show(value)}) in the new run too, got "
                f"{show(mine.get(name))} (give the run's data and model options, and change only the prior's)"
            )
    saved = state.get("config") or {}
    by_name = {f.name: f for f in TrainConfig.__dataclass_fields__.values()}
    checked = DATA_FIELDS + (("seed",) if cfg.holdout else ())  # the seed draws the held-out images
    for name in checked:
        if name in saved and saved[name] != getattr(cfg, name):
            raise InputError(
                f"--prior-of {source}: expected {option_name(by_name[name])} {show(saved[name])} as the run was "
                f"trained with, got {show(getattr(cfg, name))}"
            )
    return {key: value for key, value in state["model"].items() if not key.startswith(PRIOR_PREFIX)}


def start_from(model: nn.Module, weights: dict[str, Any]) -> None:
    """Copy the source run's encoder and decoder into `model` (whose prior stays as built)."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    left = [key for key in missing if not key.startswith(PRIOR_PREFIX)]
    if left or unexpected:
        raise InputError(
            f"--prior-of: expected the run's weights to fit the new model, got missing {left[:3]} and "
            f"unexpected {list(unexpected)[:3]}"
        )

