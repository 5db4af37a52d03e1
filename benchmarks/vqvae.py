"""The VQ-VAE's figures (issue #25), all through the ONNX runtime (numpy + onnxruntime):

- codebook: the share of the K codes the test set's code grids use, and their perplexity;
- reconstruction MSE per pixel on the test set (the plain autoencoder's and the VAE's beside it);
- Frechet distance (benchmarks/fashion_classifier.py's plain judge: the FID formula on its 128
  penultimate features) of 10,000 samples, classes drawn by the training frequencies (what
  `VQVAE.sample` does without a label), against the 10,000 test images; the VAE's beside it;
- label accuracy by the same judge: `--per-class` samples of every class, beside how often the judge
  recognises the real test images of that class; goals: overall >= 97% of the judge's real-image
  accuracy, every class >= 85% of its real-image accuracy;
- `vae-generate` throughput (uint8 .npy) of the VQ model and of the VAE in one run, alternating,
  median of `--repeats`;
- the bound on -log p(x) (-log p(x|codes) - log p(codes), for a class-conditional prior marginal over
  the classes with p(y) the training frequencies) beside the VAE's IWAE-100 bound from its eval.json;
- training time of each stage, from the run folder's metrics (runs/<name>/metrics.jsonl);
- how often `score`'s most probable class (argmax_y p(y) p(codes|y)) is the test image's label.

- Frechet distance and label accuracy at the `--sweep` temperatures too.

    python benchmarks/vqvae.py [--model models/fashion-mnist-vq] [--per-class 1000] [--sweep 0.8,0.6]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import generation_rates, print_table, write_result
from fashion_classifier import RECIPES, frechet_distance, train_judge

from vaeport.runtime import VAE
from vaeport.train import evaluate
from vaeport.train.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
FID_SAMPLES = 10_000
GOALS = {
    "codes_used_share": 0.90,  # at least
    "test_mse": 0.0045,  # at most
    "frechet": 15.0,  # at most
    "accuracy_overall_ratio": 0.97,  # at least, of the judge's real-image accuracy
    "accuracy_each_ratio": 0.85,  # at least, per class
    "images_per_second": 500.0,  # at least
    "training_minutes": 30.0,  # at most, both stages
}


def stage_minutes(name: str) -> dict[str, float] | None:
    """Minutes of training (steps and per-epoch evaluation) of each stage of runs/<name>."""
    metrics = ROOT / "runs" / name / "metrics.jsonl"
    if not metrics.is_file():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    minutes: dict[str, float] = {}
    for row in rows:
        stage = row.get("stage", "autoencoder")
        minutes[stage] = minutes.get(stage, 0.0) + (row["seconds"] + row["eval_seconds"]) / 60
    return minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fashion-mnist-vq")
    parser.add_argument("--vae", type=Path, default=ROOT / "models" / "fashion-mnist")
    parser.add_argument("--ae", type=Path, default=ROOT / "models" / "fashion-mnist-ae")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--generate", type=int, default=2000, help="images per throughput repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--sweep", type=lambda text: [float(t) for t in text.split(",") if t], default=[0.8, 0.6],
                        help="other temperatures to report (comma-separated; empty: none)")  # fmt: skip
    parser.add_argument("--out", default="vqvae", help="result name under benchmarks/results/")
    args = parser.parse_args()

    data = load_dataset("fashion-mnist")
    print("training the plain judge ...", flush=True)
    judge = train_judge(data.train, data.train_labels, data.test, data.test_labels, "plain")
    print(f"judge: test accuracy {judge.test_accuracy:.4f} ({judge.train_seconds:.0f} s)", flush=True)

    vq = VAE.load(args.model, device="cpu")
    classes = vq.classes or ()
    report = evaluate(args.model, k=0, seed=SEED, device="cpu")
    reference = {
        name: json.loads((path / "eval.json").read_text()).get("onnx", {})
        for name, path in (("vae", args.vae), ("ae", args.ae))
        if (path / "eval.json").is_file()
    }

    started = time.perf_counter()
    samples = vq.sample(FID_SAMPLES, seed=SEED, temperature=args.temperature)
    sample_seconds = time.perf_counter() - started
    test_features = judge.features(data.test)
    frechet = {"vq": frechet_distance(judge.features(samples), test_features)}
    vae_samples = VAE.load(args.vae, device="cpu").sample(FID_SAMPLES, seed=SEED)
    frechet["vae"] = frechet_distance(judge.features(vae_samples), test_features)

    real = judge.predict(data.test)

    def label_accuracy(temperature: float) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        accuracy: dict[str, dict[str, float]] = {}
        for c, name in enumerate(classes):
            drawn = vq.sample(args.per_class, seed=SEED, temperature=temperature, label=c)
            accuracy[name] = {
                "samples": float((judge.predict(drawn) == c).mean()),
                "real": float((real[data.test_labels == c] == c).mean()),
            }
        for row in accuracy.values():
            row["ratio"] = row["samples"] / row["real"]
        overall = {
            "samples": float(np.mean([r["samples"] for r in accuracy.values()])),
            "real": float(np.mean([r["real"] for r in accuracy.values()])),
        }
        overall["ratio"] = overall["samples"] / overall["real"]
        return accuracy, overall

    accuracy, overall = label_accuracy(args.temperature)
    # the same figures at other temperatures: how much typicality buys in label accuracy and costs in Frechet
    sweep = {}
    for temperature in args.sweep:
        per_class, mean = label_accuracy(temperature)
        drawn = vq.sample(FID_SAMPLES, seed=SEED, temperature=temperature)
        sweep[str(temperature)] = {
            "frechet": frechet_distance(judge.features(drawn), test_features),
            "accuracy_overall_ratio": mean["ratio"],
            "accuracy_each_ratio": min(r["ratio"] for r in per_class.values()),
            "lowest_class": min(per_class, key=lambda name: per_class[name]["ratio"]),
            "per_class_ratio": {name: r["ratio"] for name, r in per_class.items()},
        }
    if sweep:
        print_table(
            ["temperature", "frechet", "accuracy overall ratio", "lowest class ratio", "lowest class"],
            [[t, r["frechet"], r["accuracy_overall_ratio"], r["accuracy_each_ratio"], r["lowest_class"]]
             for t, r in sweep.items()],
        )  # fmt: skip
    print_table(
        ["class", "samples recognised", "real test images", "ratio"],
        [[name, r["samples"], r["real"], r["ratio"]] for name, r in accuracy.items()]
        + [["overall", *overall.values()]],
    )

    rates = generation_rates({"vq": vq, "vae": VAE.load(args.vae, device="cpu")}, args.generate, args.repeats)
    scores = vq.score(data.test)
    minutes = stage_minutes(args.model.name)
    figures = {
        "codes_used_share": report["codes_used_share"],
        "codes_used": report["codes_used"],
        "codebook_size": report["codebook_size"],
        "perplexity": report["perplexity"],
        "test_mse": report["test_mse"],
        "test_mse_ae": reference.get("ae", {}).get("test_mse"),
        "test_mse_vae": reference.get("vae", {}).get("test_mse"),
        "bound_given_label": report["test_neg_elbo"],
        "bound_marginal": float(scores["nll"].mean()),
        # score's most probable class, argmax_y p(y) p(codes|y): the prior as a classifier
        "prior_label_accuracy": None if "label" not in scores else float((scores["label"] == data.test_labels).mean()),
        "vae_iwae_nll": reference.get("vae", {}).get("test_iwae_nll"),
        "frechet": frechet["vq"],
        "frechet_vae": frechet["vae"],
        "accuracy_overall_ratio": overall["ratio"],
        "accuracy_each_ratio": min(r["ratio"] for r in accuracy.values()),
        "lowest_class": min(accuracy, key=lambda name: accuracy[name]["ratio"]),
        "images_per_second": rates["vq"],
        "vae_images_per_second": rates["vae"],
        "sample_seconds_10000": sample_seconds,
        "training_minutes": None if minutes is None else sum(minutes.values()),
        "training_minutes_by_stage": minutes,
    }
    met = {
        "codes_used_share": figures["codes_used_share"] >= GOALS["codes_used_share"],
        "test_mse": figures["test_mse"] <= GOALS["test_mse"],
        "frechet": figures["frechet"] <= GOALS["frechet"],
        "accuracy_overall_ratio": figures["accuracy_overall_ratio"] >= GOALS["accuracy_overall_ratio"],
        "accuracy_each_ratio": figures["accuracy_each_ratio"] >= GOALS["accuracy_each_ratio"],
        "images_per_second": figures["images_per_second"] >= GOALS["images_per_second"],
        "training_minutes": figures["training_minutes"] is not None
        and figures["training_minutes"] <= GOALS["training_minutes"],
    }
    print_table(
        ["figure", "value", "goal", "met"],
        [[k, figures[k], GOALS[k], met[k]] for k in GOALS]
        + [[k, v, "", ""] for k, v in figures.items() if k not in GOALS and not isinstance(v, dict)],
    )
    path = write_result(
        args.out,
        {
            "model": args.model.name,
            "temperature": args.temperature,
            "judge": {"recipe": RECIPES["plain"].about, "test_accuracy": judge.test_accuracy},
            "figures": figures,
            "goals": GOALS,
            "met": met,
            "label_accuracy": {"per_class": accuracy, "overall": overall},
            "frechet": frechet,
            "temperature_sweep": sweep,
            "eval": report,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
