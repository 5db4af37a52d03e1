"""Which total-correlation estimator can vae-eval trust? Minibatch-stratified sampling (Chen et al.
2018, the beta-TCVAE objective's) at several batch sizes beside the mixture over every posterior
(vae-eval's) at several sample counts, on the same codes and noise:

- synthetic posteriors with a known answer (means ~ N(0, S), S correlating two of three dimensions
  by 0.8, posteriors N(m, s^2 I) for a wide s = 0.5 and a narrow s = 0.1: q(z) = N(0, S + s^2 I));
- the shipped Fashion-MNIST VAE's test posteriors (10,000 images, ONNX encoder);
- with --run, a run folder's test posteriors (e.g. a dSprites run of benchmarks/disentanglement.py).

    python benchmarks/tc_estimators.py [--run .cache/bench/disentanglement/disentanglement-beta4-s0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_result

from vaeport.runtime.independence import aggregate_total_correlation, total_correlation
from vaeport.runtime.inputs import unit_images

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (256, 1024, 4096)
SAMPLES = (1000, 2000, 5000)


def synthetic(std: float, n: int = 20_000) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    mean = rng.multivariate_normal(np.zeros(3), cov, n)
    aggregate = cov + std**2 * np.eye(3)
    truth = 0.5 * (np.log(np.diag(aggregate)).sum() - np.log(np.linalg.det(aggregate)))
    return mean, np.full((n, 3), 2 * np.log(std)), float(truth)


def posteriors(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Test-split posteriors of a model folder (ONNX) or a run folder (torch)."""
    from vaeport.train.evaluation import is_model_folder, onnx_side, torch_side

    if is_model_folder(path):
        backend, data, _ = onnx_side(path, None, None, "cpu", "fp32", None)
    else:
        backend, data, _ = torch_side(path, None, None, "last", None)
    parts = [backend.encode(unit_images(data.test[s : s + 4096])) for s in range(0, len(data.test), 4096)]
    return np.concatenate([m for m, _ in parts]), np.concatenate([v for _, v in parts])


def compare(name: str, mean: np.ndarray, log_var: np.ndarray, truth: float | None) -> dict:
    rng = np.random.default_rng(1)
    order = rng.permutation(len(mean))
    mean, log_var = mean[order].astype(np.float64), log_var[order].astype(np.float64)
    eps = rng.standard_normal(mean.shape)
    row: dict = {"codes": name, "images": len(mean), "latent_dim": mean.shape[1], "truth": truth}
    for batch in BATCHES:
        started = time.perf_counter()
        row[f"mss_batch_{batch}"] = total_correlation(mean, log_var, eps, batch=batch)
        row[f"mss_batch_{batch}_seconds"] = time.perf_counter() - started
    for samples in SAMPLES:
        started = time.perf_counter()
        row[f"mixture_{samples}"] = aggregate_total_correlation(mean, log_var, eps, samples, seed=0)
        row[f"mixture_{samples}_seconds"] = time.perf_counter() - started
    print(f"{name}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float) and "sec" not in k))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fashion-mnist")
    parser.add_argument("--run", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for std in (0.5, 0.1):
        mean, log_var, truth = synthetic(std)
        rows.append(compare(f"synthetic, posterior std {std}", mean, log_var, truth))
    rows.append(compare(str(args.model.relative_to(ROOT)), *posteriors(args.model), None))
    if args.run is not None:
        rows.append(compare(args.run.name, *posteriors(args.run), None))
    keys = ["truth", *(f"mss_batch_{b}" for b in BATCHES), *(f"mixture_{s}" for s in SAMPLES)]
    print_table(
        ["codes", *keys], [[r["codes"], *("-" if r[k] is None else f"{r[k]:.3f}" for k in keys)] for r in rows]
    )
    print(f"wrote {write_result('tc_estimators', {'rows': rows})}")


if __name__ == "__main__":
    main()
