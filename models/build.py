"""Rebuild the shipped model folders from scratch with this project's own pipeline (`make models`).

For each recipe in models/recipes.json (a TrainConfig and export options): fit -> evaluate (torch)
-> export -> evaluate (ONNX) -> eval.json and MODEL_CARD.md, through vaeport's Python API; then
vae-plot draws the pictures into docs/. Run folders go to runs/ (not committed); model folders to
models/<name>/.

    python models/build.py [--only fashion-mnist] [--runs runs]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from vaeport.export import export
from vaeport.export.options import ExportOptions
from vaeport.runtime.atomic import atomic_write_text
from vaeport.runtime.manifest import read_manifest
from vaeport.train import Run, TrainConfig, evaluate, fit
from vaeport.train.cli import config_args
from vaeport.train.dsprites import FACTOR_GRIDS
from vaeport.train.evaluation import read_eval, save_eval

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent


def run(args: list[str]) -> None:
    print("+", shlex.join(args), flush=True)
    subprocess.run(args, check=True)


def export_args(options: dict) -> list[str]:
    """vae-export flags for a recipe's export options (booleans only: fp16, int8)."""
    return [f"--{name.replace('_', '-')}" for name, on in sorted(options.items()) if on]


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
{usage}
## Metrics ({test_line}; nats per image, Bernoulli likelihood on [0,1] pixels)

| measure | torch (run folder) | ONNX Runtime (this folder) |
|---|---|---|
{metric_rows}

Training took {train_seconds:.0f} s ({stages}training steps and per-epoch test evaluation, from
`metrics.jsonl`) on {machine}, {epochs} epochs.

## Files

{files}

## Intended use and limits

{intended}
"""

INTENDED = {
    "fashion-mnist": "Sampling, encoding, reconstruction and interpolation of 28x28 grayscale clothing images, for\n"
    "learning, demos and as a test fixture for VAE tooling. It is a small model: samples are blurry\n"
    "compared to modern generative models, it only knows the ten Fashion-MNIST classes at 28x28, and\n"
    "its likelihood numbers are comparable only to other models evaluated the same way (Bernoulli on\n"
    "the [0, 1] grey levels, not on binarized images). Not for any decision about people.",
    "vqvae": "Sampling (by class or by the training frequencies), encoding to and decoding from 7 x 7 grids\n"
    "of codes, reconstruction and scoring of 28x28 grayscale clothing images, for learning, demos and as a\n"
    "test fixture for discrete-latent tooling. Its codes are discrete: `interpolate` and `posterior` are\n"
    "refused (docs/vqvae.md). Its likelihood figure is an upper bound, looser than a VAE's IWAE bound, and\n"
    "comparable only to models evaluated the same way (Bernoulli on the [0, 1] grey levels). Samples are\n"
    "sharper than the VAE's but some are not recognisable as their class (benchmarks/vqvae.py). Not for\n"
    "any decision about people.",
    "dsprites": "A reference point for disentanglement: its latent dimensions, their traversals and its MIG,\n"
    "FactorVAE and beta-VAE scores against the known factors of the generated dSprites grid\n"
    "(docs/disentanglement.md). It knows only white sprites of three shapes on black; its scores are\n"
    "comparable to other models measured with the same metric sample sizes and image size.",
}
TEST_LINES = {
    "fashion-mnist": "official test set, 10,000 images",
    "dsprites": "the seeded 10% test split of the factor grid, 73,728 images",
}

DATASET_LINES = {
    "dsprites": "dSprites-equivalent images rendered by vaeport (train/dsprites.py; the factor grid of Matthey et "
    "al. 2017: 3 shapes x 6 scales x 40 orientations x 32 x 32 positions, 737,280 binary images), split 90/10 "
    "by the recipe's seed; nothing downloaded.",
    "fashion-mnist": "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando Research), 60,000 training and "
    "10,000 test images, MIT license. Pixels are scaled to [0, 1]; no binarization, no augmentation.",
}


def vq_metric_keys(given: str) -> list[tuple[str, str]]:
    """A VQ-VAE's rows: its bound, the bound's parts, and its codebook."""
    return [
        ("test_neg_elbo", f"bound on -log p(x{given}): -log p(x\\|codes) - log p(codes{given})"),
        ("test_recon", "  reconstruction -log p(x\\|codes)"),
        ("test_kl", f"  codes -log p(codes{given})"),
        ("test_mse", "reconstruction MSE (per pixel)"),
        ("codes_used", "codes used on the test set"),
        ("perplexity", "codebook perplexity"),
    ]


def metric_rows(torch_eval: dict, onnx_eval: dict) -> str:
    given = "\\|y" if torch_eval.get("conditional") else ""  # a table cell: the bar is escaped
    vae_keys = [
        ("test_neg_elbo", f"negative ELBO (of p(x{given}))"),
        ("test_recon", "  reconstruction"),
        ("test_kl", "  KL"),
        ("test_iwae_nll", f"IWAE-100 bound on -log p(x{given})"),
        ("test_mse", "reconstruction MSE (per pixel)"),
        ("active_units", "active units"),
        ("total_correlation", "total correlation of q(z) (nats)"),
        ("mean_abs_correlation", "mean \\|correlation\\| of latent means"),
    ]
    keys = vq_metric_keys(given) if torch_eval.get("kind") == "vqvae" else vae_keys
    rows = []
    for key, label in keys:
        if torch_eval.get(key) is None:
            continue
        fmt = (
            (lambda v: f"{v:.5f}") if key == "test_mse" else (lambda v: f"{v:.2f}" if isinstance(v, float) else str(v))
        )
        rows.append(f"| {label} | {fmt(torch_eval[key])} | {fmt(onnx_eval[key])} |")
    if torch_eval.get("disentanglement"):
        scores = (
            ("mig", "MIG"),
            ("factor_vae_score", "FactorVAE score"),
            ("beta_vae_score", "beta-VAE score"),
            ("sap_score", "SAP score"),
        )
        for key, label in scores:
            pair = (torch_eval["disentanglement"][key], onnx_eval["disentanglement"][key])
            rows.append(f"| {label} | {pair[0]:.3f} | {pair[1]:.3f} |")
    return "\n".join(rows)


def train_settings(recipe: dict, runs: Path) -> dict:
    """The recipe's TrainConfig settings; a prior fitted to another recipe's run (--prior-of
    runs/NAME) finds that run under `runs`."""
    settings = dict(recipe["train"])
    if settings.get("prior_of"):
        settings["prior_of"] = str(runs / Path(settings["prior_of"]).name)
    return settings


def build(name: str, recipe: dict, runs: Path, reuse: bool = False) -> None:
    run_dir, model_dir = runs / name, HERE / name
    config = TrainConfig(**train_settings(recipe, runs))
    print(f"+ {name}: {shlex.join(['vae-train', *config_args(config)])}", flush=True)
    run = Run(run_dir) if reuse and Run.finished(run_dir, config) else fit(config, run_dir, force=True, quiet=True)
    # The last checkpoint, not "best": best is chosen on the test set, which would leak it into the model.
    k, factors = recipe.get("eval_k", 100), recipe["train"]["dataset"] in FACTOR_GRIDS
    torch_report = evaluate(run, k=k, checkpoint="last", factors=factors)
    save_eval(run_dir / "eval.json", torch_report)
    options = ExportOptions.from_keywords({**recipe["export"], "name": name, "force": True, "checkpoint": "last"})
    export(run, model_dir, options, log=print)
    onnx_report = evaluate(model_dir, k=k, device="cpu", factors=factors)
    for report in (torch_report, onnx_report):
        save_eval(model_dir / "eval.json", report)
    write_card(name, recipe, run_dir, model_dir)


def usage_lines(classes: tuple[str, ...] | None, name: str) -> str:
    """A conditional model's card says which classes it draws and how to ask for one."""
    if not classes:
        return ""
    listed = ", ".join(f"{i} `{c}`" for i, c in enumerate(classes))
    return (
        f"\n## Classes\n\nA conditional model: every call names the class (by name or index): {listed}.\n\n"
        f'```python\nvae = VAE.load("models/{name}")\nsneakers = vae.sample(16, seed=0, label="{classes[-3]}")\n```\n\n'
        f"```bash\nvae-generate models/{name} --per-class 1000 --out synthetic/   # images and labels-*.npy\n```\n"
    )


def stage_seconds(history: list[dict]) -> str:
    """ "autoencoder N s, prior M s; " for a run trained in stages, else ""."""
    stages: dict[str, float] = {}
    for row in history:
        if "stage" in row:
            stages[row["stage"]] = stages.get(row["stage"], 0.0) + row["seconds"] + row["eval_seconds"]
    return "".join(f"{stage} {seconds:.0f} s, " for stage, seconds in stages.items())[:-2] + "; " if stages else ""


def write_card(name: str, recipe: dict, run_dir: Path, model_dir: Path) -> None:
    """MODEL_CARD.md of a model folder, from its run folder's metrics and its eval.json."""
    history = Run(run_dir).metrics
    train_seconds = sum(row["seconds"] + row["eval_seconds"] for row in history)
    evals = read_eval(model_dir / "eval.json")
    torch_eval, onnx_eval = evals["torch"], evals["onnx"]
    manifest = read_manifest(model_dir)

    card = CARD.format(
        name=name,
        about=recipe["about"],
        train_cmd=shlex.join(["vae-train", *config_args(TrainConfig(**recipe["train"])), "--out", f"runs/{name}"]),
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
                *export_args(recipe["export"]),
            ]
        ),
        dataset_line=DATASET_LINES.get(manifest.training["dataset"], manifest.training["dataset"]),
        test_line=TEST_LINES.get(manifest.training["dataset"], "the test split"),
        intended=INTENDED["vqvae"]
        if manifest.kind == "vqvae"
        else INTENDED.get(manifest.training["dataset"], INTENDED["fashion-mnist"]),
        metric_rows=metric_rows(torch_eval, onnx_eval),
        usage=usage_lines(manifest.classes, name),
        train_seconds=train_seconds,
        stages=stage_seconds(history),
        machine=f"{platform.machine()} CPU, 2 cores",
        epochs=manifest.training["epochs_trained"],
        files="\n".join(
            f"- `{f}` ({spec['bytes']:,} bytes, sha256 `{spec['sha256'][:16]}…`)" for f, spec in manifest.files.items()
        ),
    )
    atomic_write_text(model_dir / "MODEL_CARD.md", card)


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
                str(BIN / "vae-plot"),
                str(HERE / "fashion-mnist"),
                "--compare",
                str(HERE / "fashion-mnist-ae"),
                "--manifold",
                str(HERE / "fashion-mnist-2d"),
                "--conditional",
                str(HERE / "fashion-mnist-cvae"),
                "--traverse",
                "--out",
                str(ROOT / "docs"),
            ]
        )
        if (HERE / "fashion-mnist-vq").is_dir():  # its samples, and reconstructions beside the VAE's and the AE's
            beside = ["--beside", str(HERE / "fashion-mnist"), "--beside", str(HERE / "fashion-mnist-ae")]
            run([str(BIN / "vae-plot"), str(HERE / "fashion-mnist-vq"), *beside, "--out", str(ROOT / "docs")])
        for name, recipe in recipes.items():  # a model of a data set with factors: its traversals
            if recipe["train"]["dataset"] in FACTOR_GRIDS and (HERE / name).is_dir():
                picture = [str(BIN / "vae-plot"), str(HERE / name), "--traverse", "--prefix", f"{name}-"]
                run([*picture, "--out", str(ROOT / "docs")])


if __name__ == "__main__":
    main()
