"""Model quality on Fashion-MNIST: the classic tutorial VAE vs vaeport's shipped recipe, in one run.

Both are trained from scratch with `fit` and evaluated with `evaluate` on the official test set
(IWAE-100 bound on the negative log-likelihood, Bernoulli on [0,1] pixels, nats per image).

    python benchmarks/quality.py [--skip-baseline]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TUTORIAL_MODEL, print_table, write_result

from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.cli import config_args

ROOT = Path(__file__).resolve().parents[1]
# pytorch/examples vae, 10 epochs, no warm-up, constant lr.
TUTORIAL = {**TUTORIAL_MODEL, "epochs": 10, "seed": 0}
TARGET_NLL = 230.0
TARGET_SECONDS = 600.0


def train_and_eval(name: str, settings: dict[str, Any], root: Path) -> dict:
    config = TrainConfig(**settings)
    started = time.perf_counter()
    run = fit(config, root / name, quiet=True)
    seconds = time.perf_counter() - started
    result = evaluate(run, k=100, checkpoint="last")  # last checkpoint: "best" is selected on the test set
    return {
        "train_args": config_args(config),
        "train_seconds": seconds,
        "train_loop_seconds": sum(row["seconds"] for row in run.metrics),
        "test_iwae100_nll": result["test_iwae_nll"],
        "test_neg_elbo": result["test_neg_elbo"],
        "test_recon": result["test_recon"],
        "test_kl": result["test_kl"],
        "active_units": result["active_units"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    recipe = json.loads((ROOT / "models" / "recipes.json").read_text())["fashion-mnist"]["train"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_baseline:
            results["tutorial"] = train_and_eval("tutorial", TUTORIAL, Path(tmp))
        results["vaeport recipe"] = train_and_eval("recipe", recipe, Path(tmp))
    rows = [[name, r["test_iwae100_nll"], r["test_neg_elbo"], r["train_seconds"]] for name, r in results.items()]
    print_table(["model", "IWAE-100 NLL", "-ELBO", "train s"], rows)
    ours = results["vaeport recipe"]
    path = write_result(
        "quality",
        {
            "dataset": "fashion-mnist (official test set)",
            "results": results,
            "target": {"iwae100_nll_at_most": TARGET_NLL, "train_seconds_at_most": TARGET_SECONDS},
            "meets_target": ours["test_iwae100_nll"] <= TARGET_NLL and ours["train_seconds"] <= TARGET_SECONDS,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
