"""A VQ-VAE's two training stages in one run: epochs 1..`epochs` train the autoencoder
(reconstruction + commitment, the codebook by moving averages), the next `prior_epochs` train the
autoregressive prior on the codes the frozen encoder gives the training images.

Everything else is the VAE's loop (train/trainer.py): seeded permutations, the step-boundary
Ctrl-C, last.pt/best.pt, metrics.jsonl and a resume that is bit-identical in either stage. The
checkpoint holds both stages' optimizers and the generator of the codebook's dead-code restarts.

Every epoch's row reports the bound -log p(x) <= -log p(x|codes) - log p(codes) as `test_neg_elbo`
(its parts `test_recon` and `test_kl`): during the first stage with the uniform prior over the
codes (h * w * log K nats, the VQ-VAE paper's training-time prior), then with the learned one. The
encoder and decoder are frozen in the second stage, so their test figures (and the test codes) are
computed once there, not at every epoch; the prior's test NLL is computed in its stage's precision
(--prior-precision).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np
import torch

from vaeport.runtime.errors import InputError
from vaeport.train.checkpoint import load_checkpoint
from vaeport.train.loss import LossTerms, reconstruction_nll
from vaeport.train.torch_eval import unit_tensor
from vaeport.train.trainer import Trainer, learning_rate, make_optimizer
from vaeport.train.vqvae import VQVAE, vq_loss

STAGES = ("autoencoder", "prior")
CODES_SEED_OFFSET = 4  # the dead-code restarts' generator


class VQTrainer(Trainer):
    """Trains a VQVAE (train/vqvae.py) through both stages into one run folder."""

    model: VQVAE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.dist.enabled:
            raise InputError("expected one process for --model vqvae (its codebook's moving averages are per process)")
        self.optimizers = {
            "autoencoder": make_optimizer(self.model.autoencoder, self.cfg.lr),
            "prior": make_optimizer(self.model.prior, self.cfg.lr),
        }
        self.optimizer = self.optimizers[self.stage]
        self.code_rng = torch.Generator().manual_seed(self.cfg.seed + CODES_SEED_OFFSET)
        self.train_codes: torch.Tensor | None = None  # (N, h, w): the frozen encoder's, in the prior's stage
        self.frozen_test: tuple[dict[str, float], torch.Tensor] | None = None  # its test figures and codes

    @property
    def stage(self) -> str:
        """The stage of the epoch in progress."""
        return STAGES[0] if self.progress.epoch < self.cfg.epochs else STAGES[1]

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state = super().state()
        state["optimizer"] = {stage: opt.state_dict() for stage, opt in self.optimizers.items()}
        state["rng"]["codes"] = self.code_rng.get_state()
        state["stage_one_epochs"] = self.cfg.epochs
        return state

    def restore(self, path: Any) -> None:
        state = load_checkpoint(path, map_location=str(self.device))
        trained = state["progress"]["epoch"]
        if trained > state["stage_one_epochs"] and self.cfg.epochs != state["stage_one_epochs"]:
            raise InputError(
                f"--resume: the prior's stage began after {state['stage_one_epochs']} autoencoder epochs; expected "
                f"--epochs {state['stage_one_epochs']}, got {self.cfg.epochs} (raise --prior-epochs to train the "
                "prior longer)"
            )
        self.model.load_state_dict(state["model"])
        for stage, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizer"][stage])
        self.epoch_start_rng = state["rng"]["epoch_start"]
        self.noise_rng.set_state(state["rng"]["noise"])
        self.code_rng.set_state(state["rng"]["codes"])
        self.progress = type(self.progress)(**state["progress"])
        self.optimizer = self.optimizers[self.stage]

    # -- the steps ---------------------------------------------------------------------------
    def run_epoch(self, perm: torch.Tensor, total_steps: int, bar: Any, stop: Any) -> bool:
        self.optimizer = self.optimizers[self.stage]
        if self.stage == "prior" and self.train_codes is None:
            self.train_codes = self.codes_of(self.train_x)
        return super().run_epoch(perm, total_steps, bar, stop)

    def step_lr(self, global_step: int, total_steps: int) -> float:
        """Each stage on its own schedule (--lr-schedule, --prior-lr-schedule) over its own steps."""
        cfg, first = self.cfg, self.cfg.epochs * self.steps_per_epoch
        if self.stage == STAGES[0]:
            return learning_rate(cfg.lr, cfg.lr_schedule, global_step, first)
        steps = cfg.prior_epochs * self.steps_per_epoch
        return learning_rate(cfg.lr, cfg.prior_lr_schedule, global_step - first, steps)

    def rank_loss_terms(
        self, x: torch.Tensor, y: torch.Tensor | None, batch: int, part: slice, weight: float
    ) -> LossTerms:
        if self.stage == "autoencoder":
            loss, recon, _ = vq_loss(self.model.autoencoder, x, self.cfg.commitment, generator=self.code_rng)
            return LossTerms(loss, recon.detach(), (loss - recon).detach())
        assert self.train_codes is not None
        codes = self.train_codes.index_select(0, self.batch_index)
        with self.precision():
            nll = self.model.prior.nll(codes, y).mean()
        return LossTerms(nll, torch.zeros_like(nll), nll.detach())

    def precision(self) -> contextlib.AbstractContextManager[Any]:
        """The prior's matmuls in bfloat16 under autocast with --prior-precision bf16, else as they are."""
        if self.cfg.prior_precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def codes_of(self, images: torch.Tensor) -> torch.Tensor:
        """The code grids (N, h, w) of `images` by the encoder as it stands (eval mode)."""
        autoencoder = self.model.autoencoder
        autoencoder.eval()
        size = self.cfg.eval_batch_size
        return torch.cat([autoencoder.encode(unit_tensor(images[s : s + size])) for s in range(0, len(images), size)])

    # -- the epoch's record -----------------------------------------------------------------
    @torch.no_grad()
    def epoch_row(self) -> dict[str, Any]:
        stage, cfg, p = self.stage, self.cfg, self.progress
        started = time.perf_counter()
        if stage == "autoencoder":
            test, _ = autoencoder_test_metrics(self.model, self.test_x, cfg.eval_batch_size)
            test = with_code_nll(test, uniform_code_nll(self.model))
        else:
            if self.frozen_test is None:
                self.frozen_test = autoencoder_test_metrics(self.model, self.test_x, cfg.eval_batch_size)
            frozen, codes = self.frozen_test
            with self.precision():
                code_nll = prior_test_nll(self.model, codes, self.test_y, cfg.eval_batch_size)
            test = with_code_nll(frozen, code_nll)
        self.model.train()
        return {
            "epoch": p.epoch + 1,
            "stage": stage,
            "train_loss": p.loss_sum / p.seen,
            # stage one: the reconstruction NLL and the commitment term; stage two: the prior's NLL of the codes
            "train_recon": p.recon_sum / p.seen if stage == "autoencoder" else None,
            "train_kl": p.kl_sum / p.seen,
            **test,
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_second": p.seen / max(p.train_seconds, 1e-9),
            "seconds": p.train_seconds,
            "eval_seconds": time.perf_counter() - started,
        }

    def epoch_line(self, row: dict[str, Any]) -> str:
        what = "autoencoder" if row["stage"] == "autoencoder" else "prior"
        return (
            f"epoch {row['epoch']}/{self.epochs} ({what})  train loss {row['train_loss']:.2f}  test bound "
            f"{row['test_neg_elbo']:.2f} (recon {row['test_recon']:.2f} + codes {row['test_kl']:.2f})  MSE "
            f"{row['test_mse']:.4f}  codes used {row['codes_used']:.0%}  {row['images_per_second']:.0f} img/s"
        )


@torch.no_grad()
def autoencoder_test_metrics(
    model: VQVAE, images: torch.Tensor, batch_size: int
) -> tuple[dict[str, float], torch.Tensor]:
    """The reconstruction NLL and MSE of decoding each test image's codes, the share of the codebook
    those codes use and its perplexity; and the codes (N, h, w) themselves."""
    model.eval()
    k = model.config.codebook_size
    counts = torch.zeros(k, dtype=torch.float64)
    recon = mse = 0.0
    grids = []
    for start in range(0, len(images), batch_size):
        x = unit_tensor(images[start : start + batch_size])
        codes = model.autoencoder.encode(x)
        logits = model.autoencoder.decode(codes)
        recon += float(reconstruction_nll(logits, x, "bernoulli").sum())
        mse += float(((torch.sigmoid(logits) - x) ** 2).mean(dim=(1, 2, 3)).sum())
        counts += torch.bincount(codes.reshape(-1), minlength=k).double().cpu()
        grids.append(codes)
    n = len(images)
    freq = (counts / counts.sum()).numpy()
    used = freq[freq > 0]
    figures = {
        "test_recon": recon / n,
        "test_mse": mse / n,
        "codes_used": float(len(used) / k),
        "perplexity": float(np.exp(-(used * np.log(used)).sum())),
    }
    return figures, torch.cat(grids)


def uniform_code_nll(model: VQVAE) -> float:
    """-log p(codes) under the uniform prior over the K codes: h * w * log K nats."""
    h, w = model.grid
    return h * w * math.log(model.config.codebook_size)


@torch.no_grad()
def prior_test_nll(model: VQVAE, codes: torch.Tensor, labels: torch.Tensor | None, batch_size: int) -> float:
    """The mean -log p(codes [| y]) of the test code grids under the learned prior, in nats."""
    model.eval()
    total = 0.0
    for start in range(0, len(codes), batch_size):
        y = None if labels is None else labels[start : start + batch_size]
        total += float(model.prior.nll(codes[start : start + batch_size], y).sum())
    return total / len(codes)


def with_code_nll(figures: dict[str, float], code_nll: float) -> dict[str, float]:
    """The autoencoder's test figures with -log p(codes) and their bound on -log p(x)."""
    return {"test_neg_elbo": figures["test_recon"] + code_nll, "test_kl": code_nll, **figures}
