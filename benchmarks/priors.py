"""Does a learned prior fill the holes of the latent space? The shipped N(0, I) VAE beside the
flow-prior VAE trained jointly and the N(0, I) VAE given a flow prior afterwards (`--prior-of`,
its encoder and decoder frozen): the same sizes, the same data, all through the ONNX runtime:

- likelihood: the test IWAE-100 bound on -log p(x) (vae-eval's estimator; goal <= 230.0 nats for
  the flow model);
- holes: the aggregate posterior q(z), estimated as the mixture of the 10,000 test posteriors
  q(z|x_i). For `--samples` draws z ~ p(z) of the model's own prior, KL(p || q) ~ mean[log p(z) -
  log q(z)] and the share of draws where q is e^10 times less dense than p (decodes there are
  blends of nothing the model saw; goal: at most half the N(0, I) model's); and KL(q || p) from one
  posterior sample per test image (ELBO a better prior can recover). Each test image's own
  posterior is in the mixture, so q is a little over-concentrated on its samples: the estimate is
  the same for both models. For reference, per model: the same two figures for the prior the ELBO
  is best with, the model's own aggregate posterior, here the mixture of 10,000 training images'
  posteriors (the test mixture is peaky between its components, and so is this one);
- active units (vae-eval's);
- Frechet distance of 10,000 samples to the test set on benchmarks/fashion_classifier.py's plain
  judge (goal <= 50; the N(0, I) VAE: 84.2 in benchmarks/conditional.py);
- vae-generate throughput (100,000 uint8 images to .npy) of the flow model beside the N(0, I)
  model, alternating, median of repeats (goal >= 70%);
- training time, from each model's run folder when it is there (runs/<name>/metrics.jsonl;
  goal <= 15 minutes on 2 cores; a prior fitted afterwards: its own epochs only);
- a picture of 64 samples of each (docs/flow_prior_samples.png).

    python benchmarks/priors.py [--models models/fashion-mnist models/fashion-mnist-flow ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import generation_rates, print_table, write_result
from fashion_classifier import frechet_distance, train_judge

from vaeport.runtime import VAE
from vaeport.runtime.independence import mixture_log_density
from vaeport.runtime.manifest import read_manifest
from vaeport.train import evaluate
from vaeport.train.datasets import load_dataset
from vaeport.train.plot_cli import save
from vaeport.train.plots import random_decodes

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
HOLE = 10.0  # nats: q(z) e^10 times less dense than p(z)
GOALS = {"iwae": 230.0, "frechet": 50.0, "throughput": 0.70, "train_minutes": 15.0}


def posterior_samples(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """One seeded draw from each posterior."""
    eps = np.random.default_rng(SEED).standard_normal(mean.shape)
    return (mean + np.exp(0.5 * log_var) * eps).astype(np.float32)


def holes(vae: VAE, test: np.ndarray, train: np.ndarray, samples: int) -> dict[str, float]:
    mean, log_var = vae.encode(test)
    z_prior = vae.sample_latent(samples, seed=SEED)
    gap = vae.prior.log_prob(z_prior) - mixture_log_density(z_prior, mean, log_var)
    z_post = posterior_samples(mean, log_var)
    back = mixture_log_density(z_post, mean, log_var) - vae.prior.log_prob(z_post)
    # the reference: a prior equal to the aggregate posterior of as many training images
    picked = np.sort(np.random.default_rng(SEED).choice(len(train), len(test), replace=False))
    train_mean, train_log_var = vae.encode(train[picked])
    z_ref = posterior_samples(train_mean, train_log_var)
    ref_gap = mixture_log_density(z_ref, train_mean, train_log_var) - mixture_log_density(z_ref, mean, log_var)
    return {
        "kl_prior_to_aggregate_posterior": float(gap.mean()),
        "share_of_prior_samples_in_holes": float((gap > HOLE).mean()),
        "kl_aggregate_posterior_to_prior": float(back.mean()),
        "reference_kl_to_aggregate_posterior": float(ref_gap.mean()),
        "reference_share_in_holes": float((ref_gap > HOLE).mean()),
    }


def panel_title(path: Path, vae: VAE) -> str:
    """The sample picture's title of a model: its prior, and whether that was fitted afterwards."""
    if vae.prior.name == "normal":
        return f"{path.name}\nN(0, I) prior"
    afterwards = read_manifest(path).training.get("prior_of")
    return f"{path.name}\n{vae.prior.name} prior" + (f" fitted to {afterwards} afterwards" if afterwards else "")


def training_minutes(model_dir: Path) -> float | None:
    metrics = ROOT / "runs" / model_dir.name / "metrics.jsonl"
    if not metrics.is_file():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return sum(row["seconds"] + row["eval_seconds"] for row in rows) / 60 if rows else None  # per-epoch figures


def throughput(vaes: dict[str, VAE], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """vae-generate images/s of each model and its ratio to the first, measured side by side."""
    rates = generation_rates(vaes, args.generate, args.repeats, SEED, chunk_size=25_000)
    base = next(iter(rates.values()))
    return {n: {"generate_images_per_second": r, "generate_vs_first_model": r / base} for n, r in rates.items()}


def generation_only(vaes: dict[str, VAE], args: argparse.Namespace) -> None:
    """The throughput ratios alone, with as many repeats as asked: on a noisy machine a model
    identical in cost to the baseline can measure 0.7x in 3 repeats."""
    rows = throughput(vaes, args)
    print_table(["model", "images/s", "vs first"], [[n, r["generate_images_per_second"], r["generate_vs_first_model"]]
                                                    for n, r in rows.items()])  # fmt: skip
    payload = {"generate": {"images": args.generate, "repeats": args.repeats, "dtype": "uint8"}, "models": rows}
    print(f"wrote {write_result(args.out, payload)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = [ROOT / "models" / name for name in ("fashion-mnist", "fashion-mnist-flow", "fashion-mnist-flow-posthoc")]
    parser.add_argument("--models", type=Path, nargs="+", default=models, help="model folders, the baseline first")
    parser.add_argument("--k", type=int, default=100, help="importance samples of the IWAE bound")
    parser.add_argument("--samples", type=int, default=10_000, help="prior draws (holes, Frechet distance)")
    parser.add_argument("--generate", type=int, default=100_000, help="images per vae-generate timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="priors", help="result name under benchmarks/results/")
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "flow_prior_samples.png",
                        help="64 samples of each model's prior, side by side")  # fmt: skip
    parser.add_argument("--generation-only", action="store_true",
                        help="measure only the vae-generate throughput (write it under --out)")  # fmt: skip
    args = parser.parse_args()

    vaes = {path.name: VAE.load(path, device="cpu") for path in args.models}
    if args.generation_only:
        generation_only(vaes, args)
        return
    data = load_dataset("fashion-mnist")
    print("training the plain judge ...", flush=True)
    judge = train_judge(data.train, data.train_labels, data.test, data.test_labels, "plain")
    test_features = judge.features(data.test)
    rows = {}
    for path, (name, vae) in zip(args.models, vaes.items(), strict=True):
        print(f"== {name} (prior {vae.prior.name})", flush=True)
        report = evaluate(path, k=args.k, seed=SEED, device="cpu")
        row = {
            "prior": vae.prior.name,
            "test_iwae_nll": report["test_iwae_nll"],
            "test_neg_elbo": report["test_neg_elbo"],
            "test_kl": report["test_kl"],
            "active_units": report["active_units"],
            **holes(vae, data.test, data.train, args.samples),
            "frechet_distance": frechet_distance(judge.features(vae.sample(args.samples, seed=SEED)), test_features),
            "training_minutes": training_minutes(path),
        }
        rows[name] = row
        print(json.dumps(row, indent=1), flush=True)
    save(random_decodes({panel_title(path, vae): vae for path, vae in zip(args.models, vaes.values(), strict=True)},
                        data.test[:64]), args.picture)  # fmt: skip
    print(f"wrote {args.picture}")
    for name, figures in throughput(vaes, args).items():
        rows[name].update(figures)
    headers = ["model", "prior", "IWAE-100", "KL(p||q)", "in holes", "reference", "KL(q||p)", "active", "Frechet",
               "gen ratio", "train min"]  # fmt: skip
    print_table(
        headers,
        [
            [name, r["prior"], r["test_iwae_nll"], r["kl_prior_to_aggregate_posterior"],
             r["share_of_prior_samples_in_holes"], r["reference_share_in_holes"], r["kl_aggregate_posterior_to_prior"],
             r["active_units"],
             r["frechet_distance"], r["generate_vs_first_model"], r["training_minutes"] or float("nan")]
            for name, r in rows.items()
        ],
    )  # fmt: skip
    path = write_result(
        args.out,
        {
            "k": args.k,
            "samples": args.samples,
            "hole_threshold_nats": HOLE,
            "goals": GOALS,
            "judge": {"recipe": "plain", "test_accuracy": judge.test_accuracy},
            "generate": {"images": args.generate, "repeats": args.repeats, "dtype": "uint8"},
            "models": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
