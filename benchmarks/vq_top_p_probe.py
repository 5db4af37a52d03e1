"""Would nucleus (top-p) sampling buy the VQ-VAE's label accuracy more cheaply than temperature?

A probe for issue 25, not a runtime option: the runtime's inverse-CDF draw (runtime/vq_sampling.py)
is replaced, for this process only, by one that keeps the smallest set of most probable codes whose
probability reaches p (renormalised) and draws from it with the same uniforms. For each setting it
measures what benchmarks/vqvae.py measures at temperatures: the Frechet distance of 10,000 samples
(classes by training frequency) and the label accuracy of 1,000 samples per class, as a share of the
judge's accuracy on real test images, overall and for the lowest class.

    python benchmarks/vq_top_p_probe.py                      # results/vq_top_p_probe.json
    python benchmarks/vq_top_p_probe.py --top-p 1 0.9 0.8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_result
from fashion_classifier import frechet_distance, train_judge

import vaeport.runtime.vq_sampling as vq_sampling
from vaeport.runtime import VAE
from vaeport.train.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SAMPLES = 10_000
PLAIN_DRAW = vq_sampling.draw


def nucleus_draw(top_p: float) -> Callable[..., np.ndarray]:
    """runtime/vq_sampling.draw with the codes outside the top-p nucleus given no probability."""

    def draw(logits: np.ndarray, uniforms: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        if top_p >= 1 or temperature == 0:
            return PLAIN_DRAW(logits, uniforms, temperature)
        scaled = logits.astype(np.float64) / temperature
        scaled -= scaled.max(axis=-1, keepdims=True)
        probs = np.exp(scaled)
        probs /= probs.sum(axis=-1, keepdims=True)
        order = np.argsort(-probs, axis=-1, kind="stable")
        ranked = np.take_along_axis(probs, order, axis=-1)
        kept = np.where(np.cumsum(ranked, axis=-1) - ranked < top_p, ranked, 0.0)
        cumulative = np.cumsum(kept / kept.sum(axis=-1, keepdims=True), axis=-1)
        index = np.minimum((cumulative <= uniforms[:, None]).sum(axis=-1), logits.shape[-1] - 1)
        return np.take_along_axis(order, index[:, None], axis=-1)[:, 0].astype(np.int64)

    return draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fashion-mnist-vq")
    parser.add_argument("--top-p", type=float, nargs="+", default=[1.0, 0.95, 0.9, 0.8])
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--out", default="vq_top_p_probe")
    args = parser.parse_args()

    data = load_dataset("fashion-mnist")
    judge = train_judge(data.train, data.train_labels, data.test, data.test_labels, "plain")
    vq = VAE.load(args.model, device="cpu")
    classes = vq.classes or ()
    real = judge.predict(data.test)
    real_accuracy = np.array([(real[data.test_labels == c] == c).mean() for c in range(len(classes))])
    test_features = judge.features(data.test)
    results = {}
    try:
        for top_p in args.top_p:
            vq_sampling.draw = nucleus_draw(top_p)
            samples = vq.sample(SAMPLES, seed=SEED)
            drawn = [vq.sample(args.per_class, seed=SEED, label=c) for c in range(len(classes))]
            accuracy = np.array([(judge.predict(images) == c).mean() for c, images in enumerate(drawn)])
            ratios = accuracy / real_accuracy
            results[str(top_p)] = {
                "frechet": frechet_distance(judge.features(samples), test_features),
                "accuracy_overall_ratio": float(accuracy.mean() / real_accuracy.mean()),
                "accuracy_each_ratio": float(ratios.min()),
                "lowest_class": classes[int(ratios.argmin())],
                "per_class_ratio": {name: float(r) for name, r in zip(classes, ratios, strict=True)},
            }
    finally:
        vq_sampling.draw = PLAIN_DRAW
    print_table(
        ["top-p", "frechet", "accuracy overall ratio", "lowest class ratio", "lowest class"],
        [[p, r["frechet"], r["accuracy_overall_ratio"], r["accuracy_each_ratio"], r["lowest_class"]]
         for p, r in results.items()],
    )  # fmt: skip
    payload = {
        "model": args.model.name,
        "judge_test_accuracy": judge.test_accuracy,
        "samples": SAMPLES,
        "per_class": args.per_class,
        "temperature": 1.0,
        "top_p": results,
    }
    print(f"wrote {write_result(args.out, payload)}")


if __name__ == "__main__":
    main()
