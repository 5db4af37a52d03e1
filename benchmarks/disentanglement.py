"""What does beta buy? beta-VAEs (beta 1, 4, 8, 16), beta-TCVAE and the capacity objective on the
generated dSprites grid, several seeds each, the same encoder, decoder and training budget for all
(by default 6 epochs; the capacity config raises C to 8 nats over them):

- disentanglement (train/disentanglement.py, disentanglement_lib's definitions): MIG, FactorVAE
  score, beta-VAE score;
- independence: the total correlation of the aggregate posterior (nats, the mixture of the test
  posteriors) and the mean |correlation| of the posterior means;
- the cost: reconstruction nats and KL per image on the test split, and training minutes.

Goals (issue 26): the total correlation falls as beta rises (median over seeds); the best
configuration beats beta = 1 on MIG and FactorVAE score by more than the spread over seeds and
reaches MIG >= 0.20 and FactorVAE >= 0.75 (median of 3 seeds).

    python benchmarks/disentanglement.py --configs beta1 beta16 capacity   # results/disentanglement-6ep.json
    python benchmarks/disentanglement.py --epochs 2 --name disentanglement \
        --configs beta1 beta4 beta8 beta16 btcvae6                         # the 2-epoch table, disentanglement.json
    python benchmarks/disentanglement.py --epochs 1 --seeds 0 --name disentanglement-probe
    python benchmarks/disentanglement.py --curve capacity --curve-epochs 6 --name probe-capacity8-6ep
    python benchmarks/disentanglement.py --figure --figure-curve probe-capacity8-6ep-curve  # docs/disentanglement.png

--curve trains one configuration epoch by epoch (each a bit-identical --resume of the last) and
measures the metrics after every epoch: how MIG and the FactorVAE score grow with training time.

Run folders are kept under .cache/bench/disentanglement/ (a finished run is not trained again), so
an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

from vaeport.runtime.atomic import atomic_write_text
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.datasets import TEST_FRACTION
from vaeport.train.disentanglement import MetricSizes
from vaeport.train.dsprites import DSPRITES
from vaeport.train.run_folder import read_metrics

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / ".cache" / "bench" / "disentanglement"
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = {  # name -> (objective, beta)
    "beta1": ("elbo", 1.0),
    "beta4": ("elbo", 4.0),
    "beta8": ("elbo", 8.0),
    "beta16": ("elbo", 16.0),
    "btcvae6": ("btcvae", 6.0),  # Chen et al.'s dSprites setting
    "capacity": ("capacity", 100.0),  # Burgess et al. 2018: --beta is their gamma; C from --capacity(-epochs)
}
GOALS = {"mig": 0.20, "factor_vae_score": 0.75}
TRAIN_IMAGES = DSPRITES.count - round(TEST_FRACTION * DSPRITES.count)
COLUMNS = ("mig", "factor_vae_score", "beta_vae_score", "total_correlation", "mean_abs_correlation", "recon", "kl")


def config(objective: str, beta: float, seed: int, args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset="dsprites",
        image_size=args.image_size,
        arch=args.arch,
        hidden=args.hidden,
        latent_dim=args.latent_dim,
        objective=objective,
        beta=beta,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=seed,
        eval_batch_size=4096,
        **({"capacity": args.capacity, "capacity_epochs": args.capacity_epochs} if objective == "capacity" else {}),
    )


def run_one(name: str, seed: int, args: argparse.Namespace, sizes: MetricSizes) -> dict[str, Any]:
    objective, beta = CONFIGS[name]
    cfg = config(objective, beta, seed, args)
    folder = RUNS / f"{args.name}-{name}-s{seed}"
    done = (folder / "metrics.jsonl").is_file() and len(read_metrics(folder)) >= cfg.epochs
    if not done:
        resume = (folder / "last.pt").is_file()
        fit(cfg, folder, resume=resume, force=not resume, quiet=True)
    history = read_metrics(folder)
    started = time.perf_counter()
    result = evaluate(folder, k=0, seed=0, checkpoint="last", factors=True, metric_sizes=sizes)
    metrics = result["disentanglement"]
    return {
        "config": name,
        "seed": seed,
        "objective": objective,
        "beta": beta,
        "mig": metrics["mig"],
        "mig_per_factor": metrics["mig_per_factor"],
        "factor_vae_score": metrics["factor_vae_score"],
        "beta_vae_score": metrics["beta_vae_score"],
        "sap_score": metrics.get("sap_score"),
        "total_correlation": result["total_correlation"],
        "mean_abs_correlation": result["mean_abs_correlation"],
        "recon": result["test_recon"],
        "kl": result["test_kl"],
        "active_units": result["active_units"],
        "train_minutes": sum(row["seconds"] + row.get("eval_seconds", 0.0) for row in history) / 60,
        "steps": len(history) * int(np.ceil(TRAIN_IMAGES / cfg.batch_size)),
        "metric_minutes": (time.perf_counter() - started) / 60,
    }


def curve(name: str, seed: int, epochs: int, args: argparse.Namespace, sizes: MetricSizes) -> list[dict[str, Any]]:
    """The metrics of one configuration after each of `epochs` epochs, with the training minutes."""
    objective, beta = CONFIGS[name]
    folder = RUNS / f"{args.name}-curve-{name}-s{seed}"
    measured = folder / "curve.jsonl"  # one point per line, rewritten whole after each epoch's metrics
    done = [json.loads(line) for line in measured.read_text().splitlines()] if measured.is_file() else []
    points = []
    for epoch in range(1, epochs + 1):
        if epoch <= len(done):
            points.append(done[epoch - 1])
            continue
        cfg = config(objective, beta, seed, args).replace(epochs=epoch)
        trained = (folder / "metrics.jsonl").is_file() and len(read_metrics(folder)) >= epoch
        if trained and len(read_metrics(folder)) > epoch:
            raise SystemExit(f"{folder} is past epoch {epoch} without its point in {measured.name}: delete the folder")
        if not trained:
            fit(cfg, folder, resume=epoch > 1, force=epoch == 1, quiet=True)
        history = read_metrics(folder)[:epoch]
        result = evaluate(folder, k=0, seed=0, checkpoint="last", factors=True, metric_sizes=sizes)
        metrics = result["disentanglement"]
        point = {
            "epoch": epoch,
            "train_minutes": sum(row["seconds"] + row.get("eval_seconds", 0.0) for row in history) / 60,
            "mig": metrics["mig"],
            "factor_vae_score": metrics["factor_vae_score"],
            "beta_vae_score": metrics["beta_vae_score"],
            "sap_score": metrics.get("sap_score"),
            "mig_per_factor": metrics["mig_per_factor"],
            "active_units": result["active_units"],
            "total_correlation": result["total_correlation"],
            "recon": result["test_recon"],
        }
        points.append(point)
        atomic_write_text(measured, "".join(json.dumps(p) + "\n" for p in points))
        print(
            f"{name} epoch {epoch} ({point['train_minutes']:.1f} min): MIG {point['mig']:.3f}  "
            f"FactorVAE {point['factor_vae_score']:.3f}  TC {point['total_correlation']:.2f}",
            flush=True,
        )
    return points


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Median and range over seeds of every column, per configuration."""
    table: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(row["config"] for row in rows):
        mine = [row for row in rows if row["config"] == name]
        table[name] = {
            column: {
                "median": median([row[column] for row in mine]),
                "min": min(row[column] for row in mine),
                "max": max(row[column] for row in mine),
            }
            for column in (*COLUMNS, "train_minutes")
        }
        table[name]["seeds"] = len(mine)
    return table


def verdicts(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals, judged on the medians."""
    elbo = [name for name in table if CONFIGS[name][0] == "elbo"]
    tcs = [table[name]["total_correlation"]["median"] for name in sorted(elbo, key=lambda n: CONFIGS[n][1])]
    best = max(table, key=lambda name: table[name]["mig"]["median"])
    out: dict[str, Any] = {"tc_falls_with_beta": all(b <= a for a, b in pairwise(tcs)), "best": best}
    if "beta1" in table and best != "beta1":
        for metric in ("mig", "factor_vae_score"):
            spread = max(
                table[n][metric]["max"] - table[n][metric]["min"] for n in ("beta1", best)
            )  # the wider range over seeds of the two
            gain = table[best][metric]["median"] - table["beta1"][metric]["median"]
            out[f"{metric}_beats_beta1_by_more_than_spread"] = gain > spread
    for metric, goal in GOALS.items():
        out[f"{metric}_goal_met"] = table[best][metric]["median"] >= goal
    return out


def figure(name: str, curve_name: str | None = None) -> Path:
    """docs/disentanglement.png from the table's and the curve's results (`curve_name`, by default the
    table's name + "-curve"): the scores and the total correlation by configuration (median, bars over
    the seeds), and MIG against training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = json.loads((RESULTS / f"{name}.json").read_text())["table"]
    curve_file = RESULTS / f"{curve_name or name + '-curve'}.json"
    panels = 3 if curve_file.is_file() else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.0))
    names = list(table)
    x = np.arange(len(names))
    for offset, (metric, label) in enumerate(
        (("mig", "MIG"), ("factor_vae_score", "FactorVAE score"), ("beta_vae_score", "beta-VAE score"))
    ):
        med = np.array([table[n][metric]["median"] for n in names])
        low = med - np.array([table[n][metric]["min"] for n in names])
        high = np.array([table[n][metric]["max"] for n in names]) - med
        axes[0].bar(x + (offset - 1) * 0.27, med, 0.27, yerr=[low, high], capsize=2, label=label)
    axes[0].set_xticks(x, names)
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    axes[0].set_title("disentanglement (median and range over seeds)", fontsize=10)
    tc = [table[n]["total_correlation"]["median"] for n in names]
    axes[1].bar(x, tc, 0.5, color="gray")
    axes[1].set_xticks(x, names)
    axes[1].set_ylabel("nats")
    axes[1].set_title("total correlation of q(z) (median over seeds)", fontsize=10)
    if panels == 3:
        payload = json.loads(curve_file.read_text())
        points = payload["curve"]
        minutes = [p["train_minutes"] for p in points]
        for metric, label in (("mig", "MIG"), ("factor_vae_score", "FactorVAE score")):
            axes[2].plot(minutes, [p[metric] for p in points], marker="o", label=label)
        axes[2].axhline(GOALS["mig"], color="C0", ls=":", lw=1)
        axes[2].axhline(GOALS["factor_vae_score"], color="C1", ls=":", lw=1)
        axes[2].set_xlabel("training minutes (2 CPU cores)")
        axes[2].set_ylim(0, 1)
        axes[2].legend(fontsize=8)
        settings = payload["settings"]
        axes[2].set_title(f"{settings['curve']}, seed {settings['seeds'][0]}, after each epoch", fontsize=10)
    fig.tight_layout()
    out = ROOT / "docs" / "disentanglement.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--hidden", default="512,512")
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--capacity", type=float, default=8.0, help="The capacity config's final KL (nats).")
    parser.add_argument("--capacity-epochs", type=float, default=6.0, help="Epochs of the capacity config's ramp.")
    parser.add_argument("--metric-scale", type=float, default=0.2, help="Share of disentanglement_lib's sample sizes.")
    parser.add_argument("--name", default="disentanglement-6ep", help="Result file and run-folder prefix.")
    parser.add_argument("--curve", choices=list(CONFIGS), default=None, help="Only the curve of this configuration.")
    parser.add_argument("--curve-epochs", type=int, default=10)
    parser.add_argument("--figure", action="store_true", help="Only draw docs/disentanglement.png from the results.")
    parser.add_argument("--figure-curve", default=None, help="--figure: the curve result (default NAME-curve).")
    args = parser.parse_args()
    if args.figure:
        print(f"wrote {figure(args.name, args.figure_curve)}")
        return
    full = MetricSizes()
    scaled = {k: max(2, round(v * args.metric_scale)) for k, v in full.__dict__.items() if k != "batch"}
    sizes = MetricSizes(**scaled, batch=full.batch)
    if args.curve is not None:
        points = curve(args.curve, args.seeds[0], args.curve_epochs, args, sizes)
        payload = {"settings": dict(vars(args)), "metric_sizes": dict(sizes.__dict__), "curve": points}
        print(f"wrote {write_result(args.name + '-curve', payload)}")
        return
    rows = []
    for name in args.configs:
        for seed in args.seeds:
            row = run_one(name, seed, args, sizes)
            rows.append(row)
            print(
                f"{name} seed {seed}: MIG {row['mig']:.3f}  FactorVAE {row['factor_vae_score']:.3f}  "
                f"beta-VAE {row['beta_vae_score']:.3f}  TC {row['total_correlation']:.2f}  recon {row['recon']:.1f}  "
                f"KL {row['kl']:.1f}  {row['train_minutes']:.1f} min",
                flush=True,
            )
    table = summarise(rows)
    print_table(
        ["config", *COLUMNS, "train min"],
        [
            [name]
            + [
                f"{t[c]['median']:.3f} [{t[c]['min']:.3f}, {t[c]['max']:.3f}]"
                for c in (*COLUMNS, "train_minutes")
            ]
            for name, t in table.items()
        ],
    )
    settings = dict(vars(args))
    payload = {
        "settings": settings,
        "metric_sizes": dict(sizes.__dict__),
        "runs": rows,
        "table": table,
        "verdicts": verdicts(table),
    }
    print(f"wrote {write_result(args.name, payload)}")


if __name__ == "__main__":
    main()
