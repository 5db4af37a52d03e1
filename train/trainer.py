"""The training loop: seeded permutations over one in-memory tensor, Adam, KL warm-up, checkpoints.

Resuming from `last.pt` gives bit-identical weights to an uninterrupted run: the checkpoint holds
the data RNG state from the start of the current epoch (so the epoch's permutation is redrawn),
the noise RNG state, the step reached inside the epoch, and the running sums of the epoch. Ctrl-C
and SIGTERM are only acted on between steps (train/stop.py), so what is saved is always a step
boundary.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vaeport.runtime.atomic import atomic_write_text
from vaeport.runtime.errors import Interrupted, TrainingError
from vaeport.train.checkpoint import BEST, LAST, load_checkpoint, save_checkpoint
from vaeport.train.config import LR_SCHEDULES, TrainConfig, total_epochs
from vaeport.train.datasets import ImageData
from vaeport.train.distributed import from_environment
from vaeport.train.distributions import DiagonalGaussian, StandardNormal
from vaeport.train.families import build_model
from vaeport.train.loss import LossTerms, btcvae_loss, capacity_loss, iwae_loss, vae_loss
from vaeport.train.posthoc import freeze_autoencoder
from vaeport.train.run_folder import METRICS_FILE
from vaeport.train.stop import StopRequest, stop_requests
from vaeport.train.torch_eval import neg_elbo, unit_tensor
from vaeport.train.vae import VAE

EVAL_SEED_OFFSET = 3  # the test ELBO uses its own generator so that evaluation never shifts training


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # the epoch being trained (0-based)
    step: int = 0  # batches of that epoch already done
    loss_sum: float = 0.0  # running sums over the epoch, weighted by batch size
    recon_sum: float = 0.0
    kl_sum: float = 0.0
    seen: int = 0
    train_seconds: float = 0.0
    best: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam over the trainable parameters, with the fused kernel where this torch build has it (CPU
    since torch 2.4)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(parameters, lr=lr)


WSD_DECAY_FRACTION = 0.2  # the share of steps "wsd" spends decaying (Hägele et al. 2024: 20% matches cosine)


def learning_rate(lr: float, schedule: str, global_step: int, total_steps: int) -> float:
    """The rate at `global_step` of `total_steps`: constant; cosine to 0; or wsd (warmup-stable-decay
    without the warm-up, Hu et al. 2024): constant, then linearly to 0 over the last 20% of steps."""
    if schedule == "constant":
        return lr
    progress = min(global_step / total_steps, 1.0)
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "wsd":
        return lr * min(1.0, (1.0 - progress) / WSD_DECAY_FRACTION)
    raise ValueError(f"expected a learning-rate schedule in {LR_SCHEDULES}, got {schedule!r}")


def kl_ramp(cfg: TrainConfig, global_step: int, steps_per_epoch: int) -> float:
    """The KL warm-up factor: from 0 to 1, linearly over the warm-up epochs."""
    warmup_steps = cfg.kl_warmup_epochs * steps_per_epoch
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, global_step / warmup_steps)


def kl_weight(cfg: TrainConfig, global_step: int, steps_per_epoch: int) -> float:
    """beta, ramped linearly from 0 over the warm-up epochs."""
    return cfg.beta * kl_ramp(cfg, global_step, steps_per_epoch)


def allowed_kl(cfg: TrainConfig, global_step: int, steps_per_epoch: int) -> float:
    """--objective capacity's C: from 0 to --capacity nats, linearly over --capacity-epochs."""
    ramp_steps = cfg.capacity_epochs * steps_per_epoch
    return cfg.capacity if ramp_steps <= 0 else cfg.capacity * min(1.0, global_step / ramp_steps)


def importance_weighted_terms(
    model: Callable[..., Any],
    vae: VAE,
    x: torch.Tensor,
    y: torch.Tensor | None,
    eps: torch.Tensor,
    weight: float,
    dreg: bool,
) -> LossTerms:
    """The IWAE loss for k samples z = mean + sigma * eps (eps: (k, b, D)). `model` is what is
    called (the VAE, or its DDP wrapper), `vae` the VAE itself.

    dreg: gradient hooks on z reweight what reaches each sample, both where z enters the decoder
    and where it enters log p(z) - log q(z|x); the loss's value is unchanged."""
    scale: list[torch.Tensor] = []  # filled once the loss (so the weights) is known, before backward
    hook = (lambda grad: grad * scale[0].unsqueeze(-1)) if dreg else None
    logits, mean, log_var = model(x, y, eps=eps, z_hook=hook)  # logits of all k samples: (k*b, C, H, W)
    z = DiagonalGaussian(mean, log_var).sample(eps)  # (k, b, D), the same z the decoder saw
    if hook is not None:
        z.register_hook(hook)
    likelihood = vae.config.likelihood
    terms = iwae_loss(logits, x, z, mean, log_var, likelihood, weight, vae.scale(), dreg=dreg, prior=vae.prior)
    if terms.z_grad_scale is not None:
        scale.append(terms.z_grad_scale)
    return terms


def watched() -> bool:
    """A progress bar helps in a terminal or a notebook; in a log file it is noise."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class Trainer:
    """Trains one model into one run folder."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: ImageData,
        run_dir: Path,
        show_progress: bool = True,
        on_step: Callable[[int, int], None] | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress  # a line per epoch, and a bar where someone watches
        self.on_step = on_step  # test hook: called with (epoch, step) after every step
        self.on_epoch = on_epoch  # called with each epoch's metrics row once it is saved
        # Adam's moments for weights that never get a gradient (always-black border pixels, dead
        # units) decay into float32 denormals, which x86 computes ~100x slower: training slowed 2x
        # within a few epochs. Flush them to zero; set before torch's worker threads start so they
        # inherit it.
        torch.set_flush_denormal(True)
        self.device = torch.device(cfg.device)
        self.dist = from_environment(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        threads = cfg.threads or (max(1, (os.cpu_count() or 1) // self.dist.local_world) if self.dist.enabled else None)
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(cfg.seed)  # weight initialisation (the same on every rank)
        self.model_config = cfg.model_config(data.image_shape, data.classes)
        self.model = build_model(self.model_config).to(self.device)
        if cfg.prior_of is not None:
            freeze_autoencoder(self.model)  # train/posthoc.py: only the prior learns
        self.train_model: torch.nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(self.model)
        self.show_progress = show_progress and self.dist.is_main
        self.optimizer = make_optimizer(self.model, cfg.lr)
        self.train_x = torch.from_numpy(data.train).to(self.device)  # (N, C, H, W)
        self.test_x = torch.from_numpy(data.test).to(self.device)
        # (N,) int64 labels of a conditional model; None for an unconditional one
        self.train_y, self.test_y = (
            (torch.from_numpy(data.train_labels).to(self.device), torch.from_numpy(data.test_labels).to(self.device))
            if self.model.conditional
            else (None, None)
        )
        self.data_rng = torch.Generator().manual_seed(cfg.seed + 1)  # epoch permutations
        self.noise_rng = torch.Generator(self.device).manual_seed(cfg.seed + 2)  # eps
        self.epoch_start_rng = self.data_rng.get_state()
        self.progress = Progress()
        n = len(self.train_x)
        self.steps_per_epoch = math.ceil(n / cfg.batch_size)
        self.epochs = total_epochs(cfg)  # of every stage (a VQ-VAE trains its prior after its autoencoder)
        self.batch_index = torch.empty(0, dtype=torch.int64)  # the training images of the step in progress

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "model_config": self.model_config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "epoch_start": self.epoch_start_rng,
                "noise": self.noise_rng.get_state(),
            },
            "progress": self.progress.__dict__,
        }

    def save(self, name: str = LAST) -> None:
        if self.dist.is_main:
            save_checkpoint(self.run_dir / name, self.state())

    def restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=str(self.device))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch_start_rng = state["rng"]["epoch_start"]
        self.noise_rng.set_state(state["rng"]["noise"])
        self.progress = Progress(**state["progress"])

    def write_metrics(self) -> None:
        if not self.dist.is_main:
            return
        lines = "".join(json.dumps(row) + "\n" for row in self.progress.history)
        atomic_write_text(self.run_dir / METRICS_FILE, lines)

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Train until `cfg.epochs`; returns the metrics of every epoch. On SIGINT/SIGTERM the step
        in progress finishes, last.pt is saved and `Interrupted` is raised."""
        cfg, p = self.cfg, self.progress
        total_steps = cfg.epochs * self.steps_per_epoch
        with stop_requests() as stop:
            while p.epoch < self.epochs:
                self.data_rng.set_state(self.epoch_start_rng)
                perm = torch.randperm(len(self.train_x), generator=self.data_rng).to(self.device)
                bar = tqdm(
                    total=self.steps_per_epoch,
                    initial=p.step,
                    desc=f"epoch {p.epoch + 1}/{self.epochs}",
                    unit="batch",
                    disable=not (self.show_progress and watched()),
                    leave=False,
                )
                try:
                    stopped = self.run_epoch(perm, total_steps, bar, stop)
                finally:
                    bar.close()
                if stopped:
                    self.save()
                    raise Interrupted(
                        f"interrupted ({stop.name()}) at epoch {p.epoch + 1} step {p.step}; state saved to "
                        f"{self.run_dir / LAST}; continue with --resume"
                    )
                self.end_epoch()
        self.dist.barrier()
        return p.history

    def step_lr(self, global_step: int, total_steps: int) -> float | None:
        """The learning rate of a step under --lr-schedule (None: constant, left as it is)."""
        if self.cfg.lr_schedule == "constant":
            return None
        return learning_rate(self.cfg.lr, self.cfg.lr_schedule, global_step, total_steps)

    def run_epoch(self, perm: torch.Tensor, total_steps: int, bar: Any, stop: StopRequest) -> bool:
        """Steps until the epoch ends (False) or a stop was requested on any rank (True, after the
        step in progress). The request rides on the step's one all-reduce, so every rank stops
        after the same step."""
        cfg, p, model = self.cfg, self.progress, self.model
        model.train()
        while p.step < self.steps_per_epoch:
            started = time.perf_counter()
            global_step = p.epoch * self.steps_per_epoch + p.step
            lr = self.step_lr(global_step, total_steps)
            if lr is not None:
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            idx = perm[p.step * cfg.batch_size : (p.step + 1) * cfg.batch_size]
            part = self.dist.part(len(idx))
            self.batch_index = idx[part]
            x = unit_tensor(self.train_x.index_select(0, idx[part]))  # (b, C, H, W): this rank's part
            y = None if self.train_y is None else self.train_y.index_select(0, idx[part])
            weight = kl_weight(cfg, global_step, self.steps_per_epoch)
            terms = self.loss_terms(x, y, len(idx), part, weight)
            # DDP averages gradients over ranks: scale each rank's batch mean by its share of the
            # global batch so the update equals that of the global batch mean.
            scaled = terms.loss * (len(x) * self.dist.world / len(idx))
            with torch.no_grad():
                wants_stop = torch.tensor(float(stop.requested), device=terms.loss.device)
                stats = torch.stack([terms.loss * len(x), terms.recon * len(x), terms.kl * len(x), wants_stop])
                loss_sum, recon_sum, kl_sum, stops = self.dist.all_reduce_sum(stats).tolist()  # one sync
            loss = loss_sum / len(idx)
            if not math.isfinite(loss):
                kept = self.run_dir / LAST
                where = f"the last good checkpoint {kept} is kept" if kept.exists() else "no checkpoint was written yet"
                raise TrainingError(
                    f"non-finite loss ({loss}) at epoch {p.epoch + 1} step {p.step + 1}; {where}; try a lower --lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            scaled.backward()
            self.optimizer.step()
            p.loss_sum += loss_sum
            p.recon_sum += recon_sum
            p.kl_sum += kl_sum
            p.seen += len(idx)
            p.step += 1
            p.train_seconds += time.perf_counter() - started
            if p.step % 10 == 0 or p.step == self.steps_per_epoch:
                bar.set_postfix(
                    loss=f"{p.loss_sum / p.seen:.2f}",
                    img_s=f"{p.seen / max(p.train_seconds, 1e-9):.0f}",
                    refresh=False,
                )
            bar.update(1)
            if self.on_step is not None:
                self.on_step(p.epoch, p.step)
            if stops > 0:
                return True
        return False

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None, batch: int, part: slice, weight: float) -> LossTerms:
        """Loss of this rank's images. The noise of the whole global batch is drawn on every rank
        and sliced, so any number of ranks sees exactly the eps of a single-process run."""
        terms = self.rank_loss_terms(x, y, batch, part, weight)
        if len(x) == 0:
            # A global batch smaller than the number of ranks (an epoch's last batch) leaves this
            # rank no images: its mean loss is 0/0. It contributes nothing, but its backward must
            # still produce a (zero) gradient for every parameter, as DDP's all-reduce expects.
            zero = sum(p.sum() for p in self.model.parameters()) * 0.0
            return LossTerms(zero, zero.detach(), zero.detach())
        return terms

    def rank_loss_terms(
        self, x: torch.Tensor, y: torch.Tensor | None, batch: int, part: slice, weight: float
    ) -> LossTerms:
        model, cfg = self.train_model, self.cfg
        if not self.model.variational:
            logits, mean, log_var = model(x, y)
            return vae_loss(logits, x, mean, log_var, cfg.likelihood, weight, self.model.scale())
        latent = cfg.latent_dim
        if cfg.objective in ("iwae", "iwae-dreg"):
            eps = torch.randn((cfg.samples, batch, latent), generator=self.noise_rng, device=self.device)[:, part]
            return importance_weighted_terms(model, self.model, x, y, eps, weight, dreg=cfg.objective == "iwae-dreg")
        eps = torch.randn((batch, latent), generator=self.noise_rng, device=self.device)[part]
        logits, mean, log_var = model(x, y, eps=eps)
        step = self.progress.epoch * self.steps_per_epoch + self.progress.step
        if cfg.objective == "btcvae":
            z = DiagonalGaussian(mean, log_var).sample(eps)
            ramp = kl_ramp(cfg, step, self.steps_per_epoch)  # beta weighs the total correlation only
            n = len(self.train_x)
            return btcvae_loss(logits, x, z, mean, log_var, cfg.likelihood, cfg.beta, ramp, n, self.model.scale())
        if cfg.objective == "capacity":
            allowed = allowed_kl(cfg, step, self.steps_per_epoch)
            return capacity_loss(logits, x, mean, log_var, cfg.likelihood, cfg.beta, allowed, self.model.scale())
        if isinstance(self.model.prior, StandardNormal):
            return vae_loss(logits, x, mean, log_var, cfg.likelihood, weight, self.model.scale())
        z = DiagonalGaussian(mean, log_var).sample(eps)  # the z the decoder saw, for the learned prior's KL
        return vae_loss(logits, x, mean, log_var, cfg.likelihood, weight, self.model.scale(), self.model.prior, z)

    def epoch_row(self) -> dict[str, Any]:
        """The metrics row of the epoch just trained, with its test evaluation."""
        cfg, p = self.cfg, self.progress
        eval_started = time.perf_counter()
        eval_rng = torch.Generator(self.device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
        test = neg_elbo(self.model, self.test_x, self.test_y, cfg.eval_batch_size, eval_rng)
        next_step = (p.epoch + 1) * self.steps_per_epoch  # the schedules' values for the epoch to come
        return {
            "epoch": p.epoch + 1,
            "train_loss": p.loss_sum / p.seen,
            "train_recon": p.recon_sum / p.seen,
            "train_kl": p.kl_sum / p.seen,
            "test_neg_elbo": test["neg_elbo"],
            "test_recon": test["recon"],
            "test_kl": test["kl"],
            "kl_weight": kl_weight(cfg, next_step, self.steps_per_epoch),
            **({"allowed_kl": allowed_kl(cfg, next_step, self.steps_per_epoch)} if cfg.objective == "capacity" else {}),
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_second": p.seen / max(p.train_seconds, 1e-9),
            "seconds": p.train_seconds,
            "eval_seconds": time.perf_counter() - eval_started,
        }

    def epoch_line(self, row: dict[str, Any]) -> str:
        """The line printed after an epoch."""
        if self.model.variational:
            parts = f"recon {row['test_recon']:.2f} + KL {row['test_kl']:.2f}"
            test = f"test -ELBO {row['test_neg_elbo']:.2f} ({parts})"
        else:  # a plain autoencoder has no ELBO: its loss is the reconstruction NLL
            test = f"test reconstruction NLL {row['test_recon']:.2f}"
        return (
            f"epoch {row['epoch']}/{self.epochs}  train loss {row['train_loss']:.2f}  {test}  "
            f"{row['images_per_second']:.0f} img/s"
        )

    def end_epoch(self) -> None:
        p = self.progress
        row = self.epoch_row()
        is_best = row["test_neg_elbo"] < p.best
        p.history.append(row)
        p.best = min(p.best, row["test_neg_elbo"])
        p.epoch += 1
        p.step = 0
        p.loss_sum = p.recon_sum = p.kl_sum = p.train_seconds = 0.0
        p.seen = 0
        self.epoch_start_rng = self.data_rng.get_state()
        self.save(LAST)
        if is_best:
            self.save(BEST)
        self.write_metrics()
        if self.on_epoch is not None and self.dist.is_main:
            self.on_epoch(dict(row))
        if self.show_progress:
            tqdm.write(self.epoch_line(row), file=sys.stderr)
