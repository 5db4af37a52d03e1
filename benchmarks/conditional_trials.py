"""Recipe search for the shipped conditional VAE: short proxy runs of candidate recipes, side by side,
judged by label accuracy (the share of samples the judge recognises as the class they were drawn for).

Every trial is the shipped conditional recipe (models/recipes.json) with a few settings changed,
trained for the same number of epochs (default 20; 75 is the shipped length) with the KL warm-up
over the first third, from seed 0. Its last checkpoint draws 1,000 samples per class from the same
latents z ~ N(0, I) (torch path), and the plain judge of benchmarks/fashion_classifier.py
classifies them; the test -ELBO is reported beside. A proxy ranks ideas cheaply; a winner still
has to be run at full length. Results are written after each trial, so an interrupted search
resumes where it stopped. With `--runs DIR` the run folders are kept there, and a folder that
already holds the finished run of a trial's exact config is judged without training it again (so
`--epochs 75 --only shipped --runs runs-trials` after copying runs/fashion-mnist-cvae to
runs-trials/shipped judges the shipped run).

    python benchmarks/conditional_trials.py [--epochs 20] [--only NAME ...] [--force] [--runs DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, print_table, write_result
from fashion_classifier import RECIPES, Judge, train_judge

from vaeport.train import Run, TrainConfig, fit
from vaeport.train.datasets import load_dataset
from vaeport.train.load import load_run
from vaeport.train.torch_eval import torch_backend

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
PER_CLASS = 1000

# name -> (what it tests, settings that differ from the shipped conditional recipe)
TRIALS: dict[str, tuple[str, dict[str, Any]]] = {
    "shipped": ("the shipped recipe: MLP 512-256, IWAE k=4, beta 1", {}),
    "wide": ("2x wider: MLP 1024-512", {"hidden": [1024, 512]}),
    "beta-2": ("beta 2 (a stronger pull to the prior)", {"beta": 2.0}),
    "beta-0.5": ("beta 0.5 (more in z, sharper reconstructions)", {"beta": 0.5}),
    "elbo": ("the ELBO instead of IWAE k=4", {"objective": "elbo", "samples": 1}),
    "conv-16-32": ("conv encoder and decoder, channels 16-32", {"arch": "conv", "hidden": [16, 32]}),
}


def trial_settings(changes: dict[str, Any], epochs: int) -> dict[str, Any]:
    recipe = json.loads((ROOT / "models" / "recipes.json").read_text())["fashion-mnist-cvae"]["train"]
    return {**recipe, **changes, "epochs": epochs, "kl_warmup_epochs": epochs / 3}


def judged_samples(run_dir: Path, judge: Judge) -> dict[str, Any]:
    """Label accuracy of the run's last checkpoint: PER_CLASS samples per class, the same latents."""
    model, _, _ = load_run(run_dir, "last")
    classes = model.config.classes or ()
    backend = torch_backend(model)
    decode = backend.decode_mean
    z = backend.prior.sample(backend.prior.noise(SEED, 0, PER_CLASS))  # the model's own prior
    per_class = {
        name: float((judge.predict(decode(z, np.full(PER_CLASS, c, dtype=np.int64))) == c).mean())
        for c, name in enumerate(classes)
    }
    return {"label_accuracy": float(np.mean(list(per_class.values()))), "per_class": per_class}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--only", nargs="*", choices=sorted(TRIALS), help="run just these trials")
    parser.add_argument("--force", action="store_true", help="rerun trials already in the results file")
    parser.add_argument("--runs", type=Path, help="keep run folders here, and judge finished ones without retraining")
    args = parser.parse_args()
    name = f"conditional_trials_{args.epochs}ep"
    path = RESULTS / f"{name}.json"
    results = json.loads(path.read_text())["trials"] if path.exists() else {}
    todo = [t for t in args.only or TRIALS if args.force or t not in results]
    if todo:
        data = load_dataset("fashion-mnist")
        judge = train_judge(data.train, data.train_labels, data.test, data.test_labels, "plain")
        print(f"plain judge: test accuracy {judge.test_accuracy:.4f}", flush=True)
        judge_record = {"recipe": RECIPES["plain"].about, "test_accuracy": judge.test_accuracy}
    with tempfile.TemporaryDirectory(prefix="vaeport-trials-") as tmp:
        for trial in todo:
            about, changes = TRIALS[trial]
            print(f"== {trial}: {about}", flush=True)
            config = TrainConfig.from_dict(trial_settings(changes, args.epochs))
            run_dir = (args.runs or Path(tmp)) / trial
            reused = Run.finished(run_dir, config)
            run = Run.open(run_dir) if reused else fit(config, run_dir, force=True, quiet=True)
            results[trial] = {
                "about": about,
                "changes": changes,
                "reused_run": reused,
                # training steps and the per-epoch test evaluation, summed over the epochs
                "train_seconds": sum(row["seconds"] + row["eval_seconds"] for row in run.metrics),
                "test_neg_elbo": run.metrics[-1]["test_neg_elbo"],
                **judged_samples(run.path, judge),
            }
            write_result(
                name,
                {"epochs": args.epochs, "judge": judge_record, "trials": results},
            )
    rows = [
        [t, r["label_accuracy"], min(r["per_class"].values()), r["test_neg_elbo"], r["train_seconds"]]
        for t, r in sorted(results.items(), key=lambda kv: -kv[1]["label_accuracy"])
    ]
    print_table(["trial", "label accuracy", "lowest class", "test -ELBO", "train s"], rows)


if __name__ == "__main__":
    main()
