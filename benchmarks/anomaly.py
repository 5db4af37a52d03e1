"""Anomaly detection with the shipped Fashion-MNIST model on the ONNX path (`VAE.score`, k=64).

Normal: Fashion-MNIST test images. Anomalies (never used for fitting anything):
- far: scikit-learn's digits (8x8, scaled to 20x20 and padded to 28x28), inverted test images,
  uniform noise, patches of scikit-learn's two sample photos (grayscale, 28x28);
- corrupted test images (defect-like): Gaussian blur (sigma 1 pixel), salt-and-pepper (5% of pixels);
- held-out class: a model trained without class c (MLP 512-256, 20 epochs, the ELBO), its default
  score calibrated on held-out normal training images, scored on the test set with c as the anomaly.
For each score (raw NLL, reconstruction MSE, NLL minus PNG code length, and the default), AUROC and
the false-positive rate at 95% true-positive rate. Also: the false-positive rate on the whole test
set of the threshold fitted at 1% on held-out training images, and score's throughput beside
decode's.

    python benchmarks/anomaly.py [--model models/fashion-mnist] [--classes 0 4 8] [--quick]
    python benchmarks/anomaly.py --model models/fashion-mnist-vq --classes   # -> anomaly-fashion-mnist-vq.json

A model folder without an anomaly calibration (one trained on every training image, such as the
shipped VQ-VAE) is calibrated here on the first 5,000 test images, which then take no further part:
the normal set is the other 5,000, and the corrupted and inverted sets are made from those.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

from vaeport.export import export
from vaeport.runtime import VAE
from vaeport.runtime.scoring import STATISTICS, Calibration, NoCalibrationWarning, model_identity
from vaeport.train import TrainConfig, fit
from vaeport.train.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "fashion-mnist"
CALIBRATION_IMAGES = 5000  # for a model folder without a calibration: test images set aside to fit one
N_SET = 1000
K = 64
SCORES = {
    "raw NLL": lambda s: s["nll"],
    "reconstruction MSE": lambda s: s["mse"],
    "NLL - PNG length (Serra et al.)": lambda s: s["nll"] - s["complexity"],
    "default (vaeport)": lambda s: s["anomaly"],
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """P(an anomaly scores higher than a normal image), ties counted half."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    return float(roc_auc_score(labels, np.r_[normal, anomalous]))


def fpr_at_tpr(normal: np.ndarray, anomalous: np.ndarray, tpr: float = 0.95) -> float:
    threshold = np.quantile(anomalous, 1 - tpr)
    return float((normal >= threshold).mean())


def digits_28() -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_digits

    out = np.zeros((N_SET, 1, 28, 28), np.float32)
    for i, image in enumerate(load_digits().images[:N_SET]):
        pixels = Image.fromarray(np.rint(image / 16 * 255).astype(np.uint8)).resize((20, 20), Image.BILINEAR)
        out[i, 0, 4:24, 4:24] = np.asarray(pixels, np.float32) / 255
    return out


def photo_patches(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(Image.fromarray(p).convert("L"), np.float32) / 255 for p in load_sample_images().images]
    out = np.empty((N_SET, 1, 28, 28), np.float32)
    for i in range(N_SET):
        photo = photos[i % len(photos)]
        size = int(rng.integers(28, 112))
        top, left = (int(rng.integers(0, d - size)) for d in photo.shape)
        patch = Image.fromarray(np.rint(photo[top : top + size, left : left + size] * 255).astype(np.uint8))
        out[i, 0] = np.asarray(patch.resize((28, 28), Image.BILINEAR), np.float32) / 255
    return out


def gaussian_blur(images: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    radius = np.arange(-3, 4)
    kernel = np.exp(-(radius**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(images, ((0, 0), (0, 0), (3, 3), (3, 3)), mode="edge")
    rows = sum(w * padded[:, :, 3 + d : 3 + d + images.shape[2], :] for d, w in zip(radius, kernel, strict=True))
    return sum(w * rows[:, :, :, 3 + d : 3 + d + images.shape[3]] for d, w in zip(radius, kernel, strict=True)).astype(
        np.float32
    )


def salt_and_pepper(images: np.ndarray, rng: np.random.Generator, share: float = 0.05) -> np.ndarray:
    out, draw = images.copy(), rng.random(images.shape)
    out[draw < share / 2] = 0.0
    out[draw > 1 - share / 2] = 1.0
    return out


def table(normal: dict, sets: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    return {
        name: {score: {"auroc": auroc(f(normal), f(s)), "fpr_at_95_tpr": fpr_at_tpr(f(normal), f(s))}
               for score, f in SCORES.items()}
        for name, s in sets.items()
    }  # fmt: skip


def held_out_class(c: int, root: Path, epochs: int) -> dict[str, dict[str, float]]:
    """Train without class c, calibrate on held-out normal training images, score the test set."""
    data = load_dataset("fashion-mnist")
    keep = data.train_labels != c
    path = root / f"without-{c}.npy"
    np.save(path, np.rint(data.train[keep, 0] * 255).astype(np.uint8))
    config = TrainConfig(dataset=f"npy:{path}", arch="mlp", hidden=(512, 256), latent_dim=32, epochs=epochs,
                         lr=2e-3, lr_schedule="cosine", kl_warmup_epochs=epochs / 10, holdout=5000, seed=0)  # fmt: skip
    run = fit(config, root / f"run-{c}", quiet=True)
    vae = VAE.load(export(run, root / f"model-{c}"), device="cpu")
    s = vae.score(data.test, k=K)
    normal = {k: v[data.test_labels != c] for k, v in s.items()}
    anomalous = {k: v[data.test_labels == c] for k, v in s.items()}
    return table(normal, {CLASSES[c]: anomalous})[CLASSES[c]]


def throughput(vae: VAE, images: np.ndarray, repeats: int, calibration: Calibration) -> dict[str, float]:
    z = vae.sample_latent(len(images), seed=0)
    times: dict[str, list[float]] = {"score (k=64)": [], "decode": []}
    vae.decode(z[:256])
    for _ in range(repeats):  # alternating, median
        started = time.perf_counter()
        vae.score(images, k=K, calibration=calibration)
        times["score (k=64)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        vae.decode(z)
        times["decode"].append(time.perf_counter() - started)
    return {name: len(images) / median(t) for name, t in times.items()}


def calibrate_on_test(vae: VAE, images: np.ndarray) -> Calibration:
    """The default score's calibration fitted on `images` (normal test images set aside for it), at
    a 1% false-positive rate, for a model folder that has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoCalibrationWarning)
        scores = vae.score(images, k=K)
    stats = {name: scores[name] for name in STATISTICS}
    source = f"the first {len(images):,} fashion-mnist test images (set aside)"
    bounded = vae.manifest.family.bounds_likelihood
    return Calibration.fit(stats, bounded, 0.01, K, 0, source, model_identity(vae.manifest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--classes", type=int, nargs="*", default=[0, 4, 8])
    parser.add_argument("--class-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vae = VAE.load(args.model, device="cpu")
    test = load_dataset("fashion-mnist").test
    started = time.perf_counter()
    calibration_used = vae.calibration
    if calibration_used is None:
        calibration_used = calibrate_on_test(vae, test[:CALIBRATION_IMAGES])
        test = test[CALIBRATION_IMAGES:]
    normal = vae.score(test, k=K, calibration=calibration_used)
    sets_images = {
        "digits (scikit-learn, 20x20 in 28x28)": digits_28(),
        "inverted test images": 1.0 - test[:N_SET],
        "uniform noise": rng.random((N_SET, 1, 28, 28), dtype=np.float32),
        "natural-photo patches": photo_patches(rng),
        "Gaussian blur (sigma 1)": gaussian_blur(test[:N_SET]),
        "salt-and-pepper (5%)": salt_and_pepper(test[:N_SET], rng),
    }
    sets = {name: vae.score(images, k=K, calibration=calibration_used) for name, images in sets_images.items()}
    results = table(normal, sets)
    calibration = {
        "fitted_on": calibration_used.source,
        "target_fpr": calibration_used.fpr,
        "test_fpr": float(normal["flagged"].mean()),
        "flagged_per_set": {name: float(s["flagged"].mean()) for name, s in sets.items()},
    }
    score_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="vaeport-anomaly-") as tmp:
        classes = {CLASSES[c]: held_out_class(c, Path(tmp), args.class_epochs) for c in args.classes}
    speed = throughput(vae, test[:2000], args.repeats, calibration_used)
    rows = [[name, *(f"{r[s]['auroc']:.3f}" for s in SCORES), f"{r['default (vaeport)']['fpr_at_95_tpr']:.3f}"]
            for name, r in {**results, **{f"held-out class: {c}": r for c, r in classes.items()}}.items()]  # fmt: skip
    print_table(["anomalies", *(f"AUROC {s}" for s in SCORES), "FPR@95%TPR default"], rows)
    print(f"threshold fitted at {calibration['target_fpr']:.0%} on {calibration['fitted_on']}: "
          f"{calibration['test_fpr']:.2%} of the {len(test):,} normal test images flagged")  # fmt: skip
    print(f"score (k=64): {speed['score (k=64)']:,.0f} images/s; decode: {speed['decode']:,.0f} images/s")
    name = "anomaly" if args.model.resolve() == DEFAULT_MODEL else f"anomaly-{args.model.name}"
    path = write_result(
        name,
        {
            "model": args.model.name,
            "k": K,
            "images_per_set": N_SET,
            "normal": f"fashion-mnist test set ({len(test):,} images{'' if len(test) == 10_000 else ', the last'})",
            "far_and_corrupted": results,
            "held_out_class": {"epochs": args.class_epochs, "results": classes},
            "calibration": calibration,
            "images_per_second": speed,
            "scoring_seconds": score_seconds,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
