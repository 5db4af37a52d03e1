"""Toward 230 nats within 15 minutes: full-length trials of the flow-prior recipe, side by side.

Each trial is the first flow recipe, the shipped VAE's (models/recipes.json: MLP 784-512-256-32,
SiLU, IWAE k=4, cosine lr, KL warm-up over the first third, 5,000 training images held out, seed 0)
with a flow of 8 couplings of width 128 for 75 epochs, and the changes its row names: what the
VAE literature pairs with a learned prior (a wider latent, more importance samples, more or fewer
couplings), and fewer epochs where a trial would not fit the budget otherwise. Scored by vae-eval's
IWAE-100 bound on the official test set (last checkpoint), timed as the whole `fit` call (loading
the data, the steps and the per-epoch test evaluation) and, since other work on a shared machine
slows some epochs, as the median epoch times the epochs.
Results are written after each trial, so an interrupted search resumes where it stopped; the run
folders stay in runs/flow-trials/ (`models/build.py --reuse-runs` can export the winner).

    python benchmarks/flow_trials.py [--only NAME ...] [--force]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, print_table, write_result
from quality import train_and_eval

ROOT = Path(__file__).resolve().parents[1]
NAME = "flow_trials"
GOALS = {"iwae": 230.0, "train_minutes": 15.0}


def recipe(epochs: int = 75, flow_layers: int = 8, **changes: Any) -> dict[str, Any]:
    """The first flow recipe (8 couplings of width 128, 75 epochs) with `changes`, its KL warm-up
    kept at a third of the epochs."""
    base = json.loads((ROOT / "models" / "recipes.json").read_text())["fashion-mnist"]["train"]
    return {**base, "prior": "flow", "flow_layers": flow_layers, "flow_hidden": 128, "epochs": epochs,
            "kl_warmup_epochs": epochs / 3, **changes}  # fmt: skip


# name -> (what it tests, TrainConfig settings)
TRIALS: dict[str, tuple[str, dict[str, Any]]] = {
    "flow4x128": ("4 couplings of width 128 (half the flow)", recipe(flow_layers=4)),
    "flow4x128-latent64": ("4 couplings, a 64-dimensional latent", recipe(flow_layers=4, latent_dim=64)),
    "flow4x128-60ep": ("4 couplings, 60 epochs", recipe(60, flow_layers=4)),
    "flow4x128-k8-45ep": ("4 couplings, IWAE k=8, 45 epochs", recipe(45, flow_layers=4, samples=8)),
}


def epoch_timing(run: Path) -> dict[str, float]:
    """The median epoch (steps plus test evaluation) of a run, and the run's length at that pace: a
    figure that other work on the machine during some epochs does not move (the wall time it does)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    median = float(np.median([row["seconds"] + row["eval_seconds"] for row in rows]))
    return {"median_epoch_seconds": median, "minutes_at_median_epoch": median * len(rows) / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(TRIALS), help="run just these trials")
    parser.add_argument("--force", action="store_true", help="rerun trials already in the results file")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "flow-trials", help="where the run folders go")
    args = parser.parse_args()
    path = RESULTS / f"{NAME}.json"
    results = json.loads(path.read_text())["trials"] if path.exists() else {}
    for trial in args.only or TRIALS:
        if trial in results and not args.force:
            continue
        about, settings = TRIALS[trial]
        print(f"== {trial}: {about}", flush=True)
        shutil.rmtree(args.runs / trial, ignore_errors=True)  # a fresh run, not a resumed one
        results[trial] = {"about": about, **train_and_eval(trial, settings, args.runs)}
        write_result(NAME, {"goals": GOALS, "trials": results})
    for trial, result in results.items():
        if (args.runs / trial / "metrics.jsonl").is_file():
            result.update(epoch_timing(args.runs / trial))
    write_result(NAME, {"goals": GOALS, "trials": results})
    rows = [
        [t, r["test_iwae100_nll"], r["test_neg_elbo"], r["test_kl"], r["active_units"], r["train_seconds"] / 60,
         r.get("minutes_at_median_epoch", float("nan"))]
        for t, r in sorted(results.items(), key=lambda kv: kv[1]["test_iwae100_nll"])
    ]  # fmt: skip
    print_table(["trial", "IWAE-100 nats", "-ELBO", "KL", "active units", "wall min", "min at median epoch"], rows)


if __name__ == "__main__":
    main()
