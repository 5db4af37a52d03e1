"""Recipe search for the shipped Fashion-MNIST model: short proxy runs of candidate recipes, side by side.

Every trial trains with the same budget in epochs (default 30, cosine schedule) from seed 0 and is
scored by vae-eval's IWAE-100 bound on the official test set (last checkpoint). A proxy ranks
ideas cheaply; the winner still has to be run at full length (`benchmarks/quality.py`).
Results are written after each trial, so an interrupted search resumes where it stopped.

    python benchmarks/quality_trials.py [--epochs 30] [--only NAME ...] [--force]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, print_table, write_result
from quality import train_and_eval

COMMON = {"dataset": "fashion-mnist", "latent_dim": 32, "lr_schedule": "cosine", "seed": 0}  # batch 128 unless set
SILU = {"activation": "silu"}


def mlp(hidden: str = "512,256", lr: float = 2e-3, warmup: str = "1/10", **extra: Any) -> dict[str, Any]:
    """An MLP trial; `warmup`: KL warm-up over this fraction of the epochs."""
    return {"arch": "mlp", "hidden": hidden, "lr": lr, "warmup": warmup, **extra}


def silu_iwae(samples: int, objective: str = "iwae", lr: float = 2e-3) -> dict[str, Any]:
    """MLP 512-256, SiLU, KL warm-up over the first third, trained on an importance-weighted bound."""
    return mlp("512,256", lr, "1/3", **SILU, objective=objective, samples=samples)


# name -> (what it tests, TrainConfig settings beyond COMMON)
TRIALS: dict[str, tuple[str, dict[str, Any]]] = {
    "mlp": ("the shipped recipe's shape: MLP 512-256, ReLU", mlp()),
    "mlp-silu": ("SiLU instead of ReLU", mlp(**SILU)),
    "mlp-batch256": ("batch 256, lr 3e-3", mlp(lr=3e-3, batch_size=256)),
    "mlp-wide": ("2x wider: 1024-512, lr 1.5e-3", mlp("1024,512", 1.5e-3)),
    "mlp-deep": ("3 hidden layers 512-512-256, SiLU", mlp("512,512,256", **SILU)),
    "mlp-silu-warmup33": ("SiLU, KL warm-up over the first third", mlp(warmup="1/3", **SILU)),
    "mlp-silu-warmup67": ("SiLU, KL warm-up over two thirds", mlp(warmup="2/3", **SILU)),
    "mlp-silu-iwae4": ("SiLU, warm-up 1/3, IWAE objective k=4", silu_iwae(4)),
    "mlp-silu-iwae8": ("SiLU, warm-up 1/3, IWAE objective k=8", silu_iwae(8)),
    "mlp-silu-iwae4-lr3e-3": ("SiLU, warm-up 1/3, IWAE k=4, lr 3e-3", silu_iwae(4, lr=3e-3)),
    "mlp-silu-dreg4": ("SiLU, warm-up 1/3, IWAE k=4 with DReG encoder gradients", silu_iwae(4, "iwae-dreg")),
    "conv-16-32": ("conv encoder/decoder, channels 16,32, SiLU", {**mlp(**SILU), "arch": "conv", "hidden": "16,32"}),
}


def trial_settings(trial: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The trial's TrainConfig settings, its warm-up fraction turned into epochs."""
    settings = {key: value for key, value in trial.items() if key != "warmup"}
    return {**COMMON, **settings, "kl_warmup_epochs": float(Fraction(trial["warmup"]) * epochs), "epochs": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--only", nargs="*", choices=sorted(TRIALS), help="run just these trials")
    parser.add_argument("--force", action="store_true", help="rerun trials already in the results file")
    args = parser.parse_args()
    name = f"quality_trials_{args.epochs}ep"
    path = RESULTS / f"{name}.json"
    results = json.loads(path.read_text())["trials"] if path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="vaeport-trials-") as tmp:
        for trial in args.only or TRIALS:
            if trial in results and not args.force:
                continue
            about, settings = TRIALS[trial]
            print(f"== {trial}: {about}", flush=True)
            results[trial] = {"about": about, **train_and_eval(trial, trial_settings(settings, args.epochs), Path(tmp))}
            write_result(name, {"epochs": args.epochs, "trials": results})
    rows = [
        [t, r["test_iwae100_nll"], r["test_neg_elbo"], r["active_units"], r["train_seconds"]]
        for t, r in sorted(results.items(), key=lambda kv: kv[1]["test_iwae100_nll"])
    ]
    print_table(["trial", "IWAE-100 nats", "-ELBO", "active units", "train s"], rows)


if __name__ == "__main__":
    main()
