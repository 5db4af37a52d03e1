"""The VQ-VAE prior's training step in fp32 against bfloat16 autocast (`--prior-precision bf16`),
side by side in one run: the shipped recipe's prior (class-conditional causal transformer, width
128, 4 blocks, 4 heads, batch 128, Adam 1e-3) trained from the same seed on the same batches for
one epoch of the training set's code grids (those the shipped model's ONNX encoder gives), then

- step time: the median over windows of 50 steps, each precision's windows interleaved with the
  other's so a machine that slows down slows both;
- the test NLL of the codes (nats per grid) after the epoch, computed in fp32 for both.

    python benchmarks/vq_prior_precision.py [--model models/fashion-mnist-vq] [--steps 469]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

from vaeport.runtime import VAE
from vaeport.train.ar_prior import CausalTransformerPrior
from vaeport.train.datasets import load_dataset

SEED = 0
WINDOW = 50


def codes(model: VAE, images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([model.encode(images[s : s + 1000]) for s in range(0, len(images), 1000)]))


def test_nll(prior: CausalTransformerPrior, grids: torch.Tensor, labels: torch.Tensor) -> float:
    prior.eval()
    with torch.no_grad():
        parts = (prior.nll(grids[s : s + 1000], labels[s : s + 1000]).sum() for s in range(0, len(grids), 1000))
        total = sum(float(part) for part in parts)
    prior.train()
    return total / len(grids)


class Run:
    """One prior, its optimizer, its batches and its autocast."""

    def __init__(self, precision: str, k: int, grid: tuple[int, int], classes: int, lr: float) -> None:
        torch.manual_seed(SEED)
        self.prior = CausalTransformerPrior(k, grid, classes, 128, 4, 4)
        self.optimizer = torch.optim.Adam(self.prior.parameters(), lr=lr)
        self.order = torch.Generator().manual_seed(SEED)
        self.precision = precision
        self.window_seconds: list[float] = []

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()

    def train(self, grids: torch.Tensor, labels: torch.Tensor, batches: list[torch.Tensor]) -> None:
        started = time.perf_counter()
        for idx in batches:
            with self.autocast():
                loss = self.prior.nll(grids[idx], labels[idx]).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.window_seconds.append((time.perf_counter() - started) / len(batches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/fashion-mnist-vq"))
    parser.add_argument("--steps", type=int, default=469, help="training steps of each (469: one epoch)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="vq_prior_precision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = VAE.load(args.model)
    data = load_dataset("fashion-mnist", None, None, SEED)
    grids, test_grids = codes(model, data.train), codes(model, data.test)
    labels, test_labels = (torch.from_numpy(a.astype(np.int64)) for a in (data.train_labels, data.test_labels))
    grid, k, classes = tuple(grids.shape[1:]), model.codebook_size, len(data.classes or ())
    runs = {p: Run(p, k, grid, classes, args.lr) for p in ("fp32", "bf16")}
    perm = torch.randperm(len(grids), generator=torch.Generator().manual_seed(SEED))
    batches = [perm[s : s + args.batch] for s in range(0, args.batch * args.steps, args.batch) if s < len(perm)]
    for start in range(0, len(batches), WINDOW):
        for run in runs.values():  # interleaved: both precisions see the machine in the same state
            run.train(grids, labels, batches[start : start + WINDOW])
        print(f"  step {min(start + WINDOW, len(batches))}/{len(batches)}", flush=True)
    results = {
        p: {
            "median_step_ms": 1000 * median(run.window_seconds),
            "epoch_seconds_at_median": median(run.window_seconds) * len(batches),
            "test_nll": test_nll(run.prior, test_grids, test_labels),
        }
        for p, run in runs.items()
    }
    speedup = results["fp32"]["median_step_ms"] / results["bf16"]["median_step_ms"]
    print_table(
        ["precision", "median step (ms)", "test NLL after (nats/grid, fp32)"],
        [[p, r["median_step_ms"], r["test_nll"]] for p, r in results.items()],
    )
    print(f"bf16 speed-up: {speedup:.2f}x")
    cpu_bf16 = bool(torch.cpu._is_avx512_bf16_supported())  # what makes bf16 fast on a CPU
    path = write_result(
        args.out,
        {
            "model": args.model.name,
            "steps": len(batches),
            "batch": args.batch,
            "lr": args.lr,
            "threads": args.threads,
            "window_steps": WINDOW,
            "cpu_avx512_bf16": cpu_bf16,
            "precisions": results,
            "bf16_speedup": speedup,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
