"""Rebuild the shipped model folders from scratch with this project's own pipeline (`make models`).

For each recipe in models/recipes.json: vae-train -> vae-eval (torch) -> vae-export -> vae-eval
(ONNX) -> MODEL_CARD.md; then vae-plot draws the pictures into docs/. Run folders go to runs/
(not committed); model folders to models/<name>/.

    python models/build.py [--only fashion-mnist] [--runs runs]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent


def run(args: list[str]) -> None:
    print("+", shlex.join(args), flush=True)
    subprocess.run(args, check=True)


def command(name: str) -> str:
    return str(BIN / name)


CARD = """# {name}

{about}

Made by this project's own pipeline (`make models`, i.e. `python models/build.py --only {name}`):

```bash
{train_cmd}
{export_cmd}
```

The exported weights are the last epoch's (`--checkpoint last`): `best.pt` is chosen on the test
set and would leak it into the reported numbers.

## Data

{dataset_line}

## Metrics (official test set, 10,000 images; nats per image, Bernoulli likelihood on [0,1] pixels)

| measure | torch (run folder) | ONNX Runtime (this folder) |
|---|---|---|
{metric_rows}

Training took {train_seconds:.0f} s (training steps and per-epoch test evaluation, from
`metrics.jsonl`) on {machine}, {epochs} epochs.

## Files

{files}

## Intended use and limits

Sampling, encoding, reconstruction and interpolation of 28x28 grayscale clothing images, for
learning, demos and as a test fixture for VAE tooling. It is a small model: samples are blurry
compared to modern generative models, it only knows the ten Fashion-MNIST classes at 28x28, and
its likelihood numbers are comparable only to other models evaluated the same way (Bernoulli on
the [0, 1] grey levels, not on binarized images). Not for any decision about people.
"""

DATASET_LINES = {
    "fashion-mnist": "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando Research), 60,000 training and "
    "10,000 test images, MIT license. Pixels are scaled to [0, 1]; no binarization, no augmentation.",
}


def metric_rows(torch_eval: dict, onnx_eval: dict) -> str:
    keys = [
        ("test_neg_elbo", "negative ELBO"),
        ("test_recon", "  reconstruction"),
        ("test_kl", "  KL"),
        ("test_iwae_nll", "IWAE-100 NLL bound"),
        ("test_mse", "reconstruction MSE (per pixel)"),
        ("active_units", "active units"),
    ]
    rows = []
    for key, label in keys:
        if torch_eval.get(key) is None:
            continue
        fmt = (
            (lambda v: f"{v:.5f}") if key == "test_mse" else (lambda v: f"{v:.2f}" if isinstance(v, float) else str(v))
        )
        rows.append(f"| {label} | {fmt(torch_eval[key])} | {fmt(onnx_eval[key])} |")
    return "\n".join(rows)


def trained(run_dir: Path, recipe: dict) -> bool:
    """True when run_dir holds a finished run of exactly this recipe."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
        epochs = len((run_dir / "metrics.jsonl").read_text().splitlines())
    except (OSError, json.JSONDecodeError):
        return False
    args = recipe["train"]
    return epochs == config["epochs"] == int(args[args.index("--epochs") + 1]) and (run_dir / "last.pt").exists()


def build(name: str, recipe: dict, runs: Path, reuse: bool = False) -> None:
    run_dir, model_dir = runs / name, HERE / name
    if not (reuse and trained(run_dir, recipe)):
        run([command("vae-train"), *recipe["train"], "--out", str(run_dir), "--force", "--quiet"])
    # The last checkpoint, not "best": best is chosen on the test set, which would leak it into the model.
    run([command("vae-eval"), str(run_dir), "--k", "100", "--checkpoint", "last"])
    run(
        [
            command("vae-export"),
            str(run_dir),
            "--out",
            str(model_dir),
            "--name",
            name,
            "--force",
            "--checkpoint",
            "last",
            *recipe["export"],
        ]
    )
    run(
        [command("vae-eval"), str(model_dir), "--k", "100", "--device", "cpu", "--out", str(run_dir / "eval-onnx.json")]
    )
    write_card(name, recipe, run_dir, model_dir)


def write_card(name: str, recipe: dict, run_dir: Path, model_dir: Path) -> None:
    """MODEL_CARD.md and eval.json of a model folder, from its run folder's files."""
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_seconds = sum(row["seconds"] + row["eval_seconds"] for row in history)
    torch_eval = json.loads((run_dir / "eval.json").read_text())
    onnx_eval = json.loads((run_dir / "eval-onnx.json").read_text())
    (model_dir / "eval.json").write_text(json.dumps({"torch": torch_eval, "onnx": onnx_eval}, indent=2) + "\n")
    manifest = json.loads((model_dir / "vae.json").read_text())
    import platform

    card = CARD.format(
        name=name,
        about=recipe["about"],
        train_cmd=shlex.join(["vae-train", *recipe["train"], "--out", f"runs/{name}"]),
        export_cmd=shlex.join(
            [
                "vae-export",
                f"runs/{name}",
                "--out",
                f"models/{name}",
                "--name",
                name,
                "--checkpoint",
                "last",
                *recipe["export"],
            ]
        ),
        dataset_line=DATASET_LINES.get(manifest["training"]["dataset"], manifest["training"]["dataset"]),
        metric_rows=metric_rows(torch_eval, onnx_eval),
        train_seconds=train_seconds,
        machine=f"{platform.machine()} CPU, 2 cores",
        epochs=manifest["training"]["epochs"],
        files="\n".join(
            f"- `{f}` ({spec['bytes']:,} bytes, sha256 `{spec['sha256'][:16]}…`)"
            for f, spec in manifest["files"].items()
        ),
    )
    (model_dir / "MODEL_CARD.md").write_text(card)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="build only these recipes")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--cards-only", action="store_true", help="rewrite MODEL_CARD.md from existing runs")
    parser.add_argument("--reuse-runs", action="store_true", help="skip training when runs/NAME is a finished run")
    args = parser.parse_args()
    recipes = json.loads((HERE / "recipes.json").read_text())
    for name, recipe in recipes.items():
        if not args.only or name in args.only:
            if args.cards_only:
                write_card(name, recipe, args.runs / name, HERE / name)
            else:
                build(name, recipe, args.runs, reuse=args.reuse_runs)
    if not args.no_plots and not args.cards_only:
        run(
            [
                command("vae-plot"),
                str(HERE / "fashion-mnist"),
                "--compare",
                str(HERE / "fashion-mnist-ae"),
                "--manifold",
                str(HERE / "fashion-mnist-2d"),
                "--out",
                str(ROOT / "docs"),
            ]
        )


if __name__ == "__main__":
    main()
