"""How good are the shipped models' samples? Label accuracy of the conditional VAE, and a Frechet
distance for it, the unconditional VAE and the plain autoencoder, judged by a Fashion-MNIST
classifier trained here from its recipe (benchmarks/fashion_classifier.py).

- Judges: the seeded CNN recipes; their test accuracies are reported. `plain` (about 91%) is the
  judge of record; `batchnorm` (about 92%) is a second opinion on the label accuracy.
- Label accuracy: `--per-class` samples of every class from the conditional model through the
  runtime (`VAE.sample(n, seed, label=c)`: the same latents for every class), classified by each
  judge, beside how often that judge recognises the real test images of each class (a generator
  that matched the data exactly would score that, not 100%); also at the lower sampling
  temperatures of `--temperatures` (z ~ N(0, t^2 I)), which trade diversity for typical items.
- Frechet distance (the FID formula on the judge's 128 penultimate features; not comparable to
  Inception FID) between the 10,000 test images and 10,000 samples of: the unconditional VAE, the
  conditional VAE (1,000 per class, as the test set; also at each lower temperature), the plain
  autoencoder decoding z ~ N(0, I); and two floors made of real images only: the test set's two
  seeded halves against each other (5,000 each, as the issue asks; smaller sets read a little
  higher) and 10,000 training images against the test set (the same set sizes as the models).
- IWAE-100 bound on -log p(x|y) of the conditional model on the test set (ONNX path), beside the
  unconditional model's -log p(x) from its eval.json, and the conditional model's own bound on
  -log p(x) = -log sum_y p(y) p(x|y) (each image's k-sample estimate for every class, p(y) the
  training frequencies). The label can lower the bound by at most log 10 = 2.30 nats (log 1/p(y));
  comparing the two models' -log p(x) separates what the label buys from a better model.

    python benchmarks/conditional.py [--cvae models/fashion-mnist-cvae] [--per-class 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_result
from fashion_classifier import EPOCHS, RECIPES, Judge, frechet_distance, train_judge

from vaeport.runtime import VAE
from vaeport.train import evaluate
from vaeport.train.datasets import ImageData, load_dataset

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
FID_SAMPLES = 10_000
TARGET_MEAN, TARGET_EACH = 0.90, 0.75


def accuracy_row(predicted: np.ndarray, wanted: np.ndarray, classes: tuple[str, ...]) -> dict:
    per_class = {name: float((predicted[wanted == c] == c).mean()) for c, name in enumerate(classes)}
    values = list(per_class.values())
    return {"per_class": per_class, "mean": float(np.mean(values)), "lowest": min(values)}


def label_accuracy(
    judge: Judge, cvae: VAE, data: ImageData, per_class: int, temperatures: list[float]
) -> dict[str, dict]:
    """How often the judge recognises the real test images of each class, and `per_class` samples
    of each class at each sampling temperature (z ~ N(0, t^2 I); the same latents for every class)."""
    classes = cvae.classes or ()
    rows = {"real test images": accuracy_row(judge.predict(data.test), data.test_labels, classes)}
    wanted = np.repeat(np.arange(len(classes)), per_class)
    for t in temperatures:
        samples = np.concatenate(
            [cvae.sample(per_class, seed=SEED, temperature=t, label=c) for c in range(len(classes))]
        )
        rows[str(t)] = accuracy_row(judge.predict(samples), wanted, classes)
    return rows


def marginal_bound(vae: VAE, images: np.ndarray, k: int, batch: int = 200) -> float:
    """Mean over images of -log sum_y p(y) p_k(x|y), p_k the IWAE-k estimate with vae-eval's
    per-image noise (so the true label's term is exactly the labelled bound's)."""
    from vaeport.runtime.evaluate import iwae_nll, log_weights, onnx_backend
    from vaeport.runtime.sampling import image_noise
    from vaeport.runtime.scoring import class_prior

    backend = onnx_backend(vae, vae.manifest.likelihood, vae.manifest.gaussian_scale)
    log_prior = class_prior(vae)
    total = 0.0
    for start in range(0, len(images), batch):
        x = images[start : start + batch]
        eps = image_noise(SEED, start, len(x), k, vae.latent_dim)
        joint = []
        for c in range(len(vae.classes or ())):
            y = np.full(len(x), c, dtype=np.int64)
            joint.append(log_prior[c] - iwae_nll(log_weights(backend, x, vae.posterior(x, label=y), eps, y)[1]))
        stacked = np.stack(joint)  # [K, B] log p(x, y)
        peak = stacked.max(0)
        total += float(-(peak + np.log(np.exp(stacked - peak).sum(0))).sum())
    return total / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cvae", type=Path, default=ROOT / "models" / "fashion-mnist-cvae")
    parser.add_argument("--vae", type=Path, default=ROOT / "models" / "fashion-mnist")
    parser.add_argument("--ae", type=Path, default=ROOT / "models" / "fashion-mnist-ae")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument(
        "--temperatures", type=float, nargs="+", default=[1.0, 0.9, 0.8], help="sampling temperatures; 1.0 is the prior"
    )
    parser.add_argument("--k", type=int, default=100, help="importance samples of the IWAE bound (0 skips it)")
    parser.add_argument("--out", default="conditional", help="result name under benchmarks/results/")
    args = parser.parse_args()

    data = load_dataset("fashion-mnist")
    judges = {}
    for recipe in RECIPES:
        print(f"training the {recipe} judge ({EPOCHS} epochs) ...", flush=True)
        trained = judges[recipe] = train_judge(data.train, data.train_labels, data.test, data.test_labels, recipe)
        print(f"{recipe} judge: test accuracy {trained.test_accuracy:.4f} ({trained.train_seconds:.0f} s)")
    judge = judges["plain"]

    cvae = VAE.load(args.cvae, device="cpu")
    classes = cvae.classes or ()
    temperatures = [1.0, *(t for t in args.temperatures if t != 1.0)]  # 1.0, the prior, is the reported row
    accuracy = {recipe: label_accuracy(j, cvae, data, args.per_class, temperatures) for recipe, j in judges.items()}
    per_class = accuracy["plain"]["1.0"]["per_class"]
    real_per_class = accuracy["plain"]["real test images"]["per_class"]
    accuracies = list(per_class.values())
    mean_accuracy = float(np.mean(accuracies))
    print_table(
        ["class", "samples recognised", "real test images recognised"],
        [[name, acc, real_per_class[name]] for name, acc in per_class.items()],
    )
    print(f"mean {mean_accuracy:.4f} (target >= {TARGET_MEAN}), lowest {min(accuracies):.4f} (target >= {TARGET_EACH})")
    print_table(
        ["judge", "images", "mean", "lowest", "lowest class"],
        [
            [recipe, images, row["mean"], row["lowest"], min(row["per_class"], key=row["per_class"].get)]
            for recipe, rows in accuracy.items()
            for images, row in rows.items()
        ],
    )

    test_features = judge.features(data.test)
    halves = np.random.default_rng(SEED).permutation(len(data.test))
    train_pick = np.random.default_rng(SEED + 1).permutation(len(data.train))[:FID_SAMPLES]
    balanced = np.arange(FID_SAMPLES) % len(classes)
    sets = {
        "unconditional VAE (z ~ N(0, I))": lambda: VAE.load(args.vae, device="cpu").sample(FID_SAMPLES, seed=SEED),
        "conditional VAE (z ~ N(0, I), 1,000 per class)": lambda: cvae.sample(FID_SAMPLES, seed=SEED, label=balanced),
        **{
            f"conditional VAE, temperature {t}": lambda t=t: cvae.sample(
                FID_SAMPLES, seed=SEED, temperature=t, label=balanced
            )
            for t in temperatures[1:]
        },
        "plain autoencoder (z ~ N(0, I))": lambda: VAE.load(args.ae, device="cpu").sample(FID_SAMPLES, seed=SEED),
    }
    frechet = {}
    for name, make in sets.items():
        frechet[name] = frechet_distance(judge.features(make()), test_features)
    half = len(halves) // 2
    frechet["floor: test half vs test half (5,000 each)"] = frechet_distance(
        test_features[halves[:half]], test_features[halves[half:]]
    )
    frechet["floor: 10,000 training images vs the test set"] = frechet_distance(
        judge.features(data.train[train_pick]), test_features
    )
    print_table(["images vs the 10,000 test images", "Frechet distance"], [[k, v] for k, v in frechet.items()])

    bound = {}
    if args.k:
        started = time.perf_counter()
        report = evaluate(args.cvae, k=args.k, seed=SEED, device="cpu")
        bound = {
            "k": args.k,
            "conditional_iwae_nll": report["test_iwae_nll"],
            "conditional_neg_elbo": report["test_neg_elbo"],
            "active_units": report["active_units"],
            "seconds": time.perf_counter() - started,
        }
        started = time.perf_counter()
        bound["conditional_marginal_iwae_nll"] = marginal_bound(cvae, data.test, args.k)
        bound["marginal_seconds"] = time.perf_counter() - started
        unconditional = json.loads((args.vae / "eval.json").read_text()).get("onnx", {})
        bound["unconditional_iwae_nll"] = unconditional.get("test_iwae_nll")
        print(
            f"IWAE-{args.k} on the test set: -log p(x|y) <= {bound['conditional_iwae_nll']:.2f} (conditional), "
            f"-log p(x) <= {bound['unconditional_iwae_nll']:.2f} (unconditional, its eval.json), "
            f"-log p(x) <= {bound['conditional_marginal_iwae_nll']:.2f} (conditional, over its classes)"
        )

    path = write_result(
        args.out,
        {
            "models": {"cvae": args.cvae.name, "vae": args.vae.name, "ae": args.ae.name},
            "judge": {
                "recipe": f"benchmarks/fashion_classifier.py, plain: {RECIPES['plain'].about}",
                "test_accuracy": judge.test_accuracy,
                "train_seconds": judge.train_seconds,
            },
            "judges": {
                recipe: {
                    "recipe": RECIPES[recipe].about,
                    "test_accuracy": j.test_accuracy,
                    "train_seconds": j.train_seconds,
                }
                for recipe, j in judges.items()
            },
            "label_accuracy_by_judge_and_temperature": accuracy,
            "label_accuracy": {
                "samples_per_class": args.per_class,
                "seed": SEED,
                "per_class": per_class,
                "judge_on_real_test_images_per_class": real_per_class,
                "mean": mean_accuracy,
                "lowest": min(accuracies),
                "targets": {"mean": TARGET_MEAN, "each": TARGET_EACH},
                "meets_targets": mean_accuracy >= TARGET_MEAN and min(accuracies) >= TARGET_EACH,
            },
            "frechet_distance": {"samples": FID_SAMPLES, "features": "judge penultimate (128)", "values": frechet},
            "iwae_bound": bound,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
