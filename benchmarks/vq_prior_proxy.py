"""Which autoregressive prior for the VQ-VAE: a gated PixelCNN (van den Oord et al. 2016, the
VQ-VAE paper's prior) or a small causal transformer (train/ar_prior.py)? A proxy measured here:
both, class-conditional, trained for the same wall-clock budget on the code grids a trained VQ-VAE
autoencoder gives Fashion-MNIST, then

- the test NLL of the codes (nats per grid) after the budget, with the curve at each evaluation;
- sampling throughput in torch (grids/s), each prior as it samples best: the transformer one
  position per step with its key/value cache (what the runtime's prior_step graph runs), the
  PixelCNN re-running the whole grid for each of the h * w positions (a masked convolution has no
  cheaper step);
- parameters.

The PixelCNN is written here only for the comparison (vertical and horizontal stacks with gated
tanh * sigmoid units, the class added as a learned bias to every gate, the first layer masked so a
position never sees itself). Both run on the same seeded batches, Adam at the same learning rate.

    python benchmarks/vq_prior_proxy.py --run runs/fashion-mnist-vq [--minutes 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

from vaeport.train.ar_prior import CausalTransformerPrior, draw
from vaeport.train.datasets import load_dataset
from vaeport.train.load import load_run
from vaeport.train.torch_eval import unit_tensor

SEED = 0


class GatedLayer(nn.Module):
    """One gated PixelCNN layer: a vertical stack (the rows above) and a horizontal stack (the
    row so far), each gated, the vertical feeding the horizontal."""

    def __init__(self, width: int, kernel: int, classes: int, first: bool) -> None:
        super().__init__()
        self.first, self.width = first, width
        self.vertical = nn.Conv2d(width, 2 * width, (kernel // 2 + 1, kernel), padding=(kernel // 2, kernel // 2))
        self.horizontal = nn.Conv2d(width, 2 * width, (1, kernel // 2 + 1), padding=(0, kernel // 2))
        self.vertical_to_horizontal = nn.Conv2d(2 * width, 2 * width, 1)
        self.residual = nn.Conv2d(width, width, 1)
        self.label = nn.Embedding(classes, 2 * width)

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = v.shape[-2:]
        if self.first:  # a position sees neither its own row's rows below nor itself
            with torch.no_grad():
                self.vertical.weight[:, :, -1].zero_()
                self.horizontal.weight[:, :, :, -1].zero_()
        bias = self.label(y)[:, :, None, None]
        v_pre = self.vertical(v)[:, :, :height, :]  # row i: rows i - k//2 .. i (.. i - 1 when first)
        h_pre = self.horizontal(h)[:, :, :, :width]  # column j: columns j - k//2 .. j
        v_out = self.gate(v_pre + bias)
        # the vertical stack's row i holds rows above i only (the first layer masks row i, and
        # every later one reads rows <= i of a stack that holds rows above them), so it feeds the
        # horizontal stack of row i as it is
        h_out = self.gate(self.vertical_to_horizontal(v_pre) + h_pre + bias)
        h_out = self.residual(h_out) + (0 if self.first else h)
        return v_out, h_out


class GatedPixelCNN(nn.Module):
    """p(codes | y) = prod_t p(code_t | codes before t in raster order, y)."""

    def __init__(self, num_codes: int, classes: int, width: int = 64, layers: int = 8, kernel: int = 3) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, width)
        self.layers = nn.ModuleList(GatedLayer(width, kernel, classes, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.ReLU(), nn.Conv2d(2 * width, num_codes, 1))

    def forward(self, codes: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits (N, h, w, K)."""
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h, y)
        return self.head(h).permute(0, 2, 3, 1)

    def nll(self, codes: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self.forward(codes, y)
        return F.cross_entropy(logits.reshape(-1, self.num_codes), codes.reshape(-1), reduction="none").reshape(
            len(codes), -1
        ).sum(1)

    @torch.no_grad()
    def sample(self, uniforms: torch.Tensor, y: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        codes = torch.zeros(len(uniforms), *grid, dtype=torch.int64)
        for t in range(grid[0] * grid[1]):
            i, j = divmod(t, grid[1])
            codes[:, i, j] = draw(self.forward(codes, y)[:, i, j], uniforms[:, t])
        return codes


def is_causal(prior: nn.Module, grid: tuple[int, int], num_codes: int) -> bool:
    """Changing the codes at and after each position leaves that position's logits unchanged."""
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, num_codes, (4, *grid), generator=gen)
    y = torch.arange(4) % 10
    prior.eval()
    with torch.no_grad():
        base = prior(codes, y).reshape(4, -1, num_codes)
        for t in range(grid[0] * grid[1]):
            changed = codes.reshape(4, -1).clone()
            changed[:, t:] = torch.randint(0, num_codes, changed[:, t:].shape, generator=gen)
            out = prior(changed.reshape(codes.shape), y).reshape(4, -1, num_codes)
            if not torch.allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5):
                return False
    return True


def codes_of(model, images: np.ndarray) -> torch.Tensor:
    encode = model.autoencoder.encode
    with torch.no_grad():
        batches = (unit_tensor(torch.from_numpy(images[s : s + 1000])) for s in range(0, len(images), 1000))
        return torch.cat([encode(x) for x in batches])


def test_nll(prior: nn.Module, codes: torch.Tensor, labels: torch.Tensor) -> float:
    prior.eval()
    with torch.no_grad():
        total = sum(
            float(prior.nll(codes[s : s + 1000], labels[s : s + 1000]).sum()) for s in range(0, len(codes), 1000)
        )
    prior.train()
    return total / len(codes)


def train_for(prior: nn.Module, codes, labels, test_codes, test_labels, minutes: float, batch: int, lr: float) -> list:
    """Adam on seeded batches for `minutes` of training steps; the test NLL after each 1/4 of the budget."""
    torch.manual_seed(SEED)
    optimizer = torch.optim.Adam(prior.parameters(), lr=lr)
    order = torch.Generator().manual_seed(SEED)
    budget, spent, steps, curve = minutes * 60, 0.0, 0, []
    checkpoints = [budget * q for q in (0.25, 0.5, 0.75, 1.0)]
    perm, at = torch.randperm(len(codes), generator=order), 0
    prior.train()
    while checkpoints:
        if at + batch > len(codes):
            perm, at = torch.randperm(len(codes), generator=order), 0
        idx = perm[at : at + batch]
        at += batch
        started = time.perf_counter()
        loss = prior.nll(codes[idx], labels[idx]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        spent += time.perf_counter() - started
        steps += 1
        if spent >= checkpoints[0]:
            checkpoints.pop(0)
            curve.append({"minutes": spent / 60, "steps": steps, "test_nll": test_nll(prior, test_codes, test_labels)})
            print(f"  {spent / 60:.1f} min, {steps} steps: test NLL {curve[-1]['test_nll']:.2f}", flush=True)
    return curve


def sampling_rate(sample, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sample(n)
        times.append(time.perf_counter() - started)
    return n / median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/fashion-mnist-vq"))
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of each prior")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="vq_prior_proxy")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, cfg, _ = load_run(args.run, "last")
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.seed)
    codes, test_codes = codes_of(model, data.train), codes_of(model, data.test)
    labels, test_labels = (torch.from_numpy(a.astype(np.int64)) for a in (data.train_labels, data.test_labels))
    grid, k, classes = tuple(codes.shape[1:]), model.config.codebook_size, len(data.classes or ())
    torch.manual_seed(SEED)
    priors = {
        "causal transformer (width 128, 4 blocks, 4 heads)": CausalTransformerPrior(k, grid, classes, 128, 4, 4),
        "gated PixelCNN (64 channels, 8 layers, 3x3)": GatedPixelCNN(k, classes, 64, 8, 3),
    }
    results = {}
    for name, prior in priors.items():
        size = sum(p.numel() for p in prior.parameters())
        print(f"{name}: {size:,} parameters, training {args.minutes} min", flush=True)
        curve = train_for(prior, codes, labels, test_codes, test_labels, args.minutes, args.batch, args.lr)
        results[name] = {
            "parameters": sum(p.numel() for p in prior.parameters()),
            "causal": is_causal(prior, grid, k),
            "curve": curve,
            "test_nll": curve[-1]["test_nll"],
        }
    uniform = lambda n: torch.rand(n, grid[0] * grid[1], generator=torch.Generator().manual_seed(0))  # noqa: E731
    transformer, pixelcnn = priors.values()
    from vaeport.train.ar_prior import sample_codes

    transformer.eval()
    pixelcnn.eval()
    names = list(priors)
    rates = {
        names[0]: sampling_rate(lambda n: sample_codes(transformer, uniform(n), torch.arange(n) % classes), 256, 3),
        names[1]: sampling_rate(lambda n: pixelcnn.sample(uniform(n), torch.arange(n) % classes, grid), 256, 3),
    }
    for name in results:
        results[name]["grids_per_second"] = rates[name]
    print_table(
        ["prior", "parameters", "test NLL (nats/grid)", "grids/s (torch, 256 a batch)", "causal"],
        [[n, r["parameters"], r["test_nll"], r["grids_per_second"], r["causal"]] for n, r in results.items()],
    )
    path = write_result(
        args.out,
        {
            "run": args.run.name,
            "grid": list(grid),
            "codebook_size": k,
            "budget_minutes": args.minutes,
            "batch": args.batch,
            "lr": args.lr,
            "threads": args.threads,
            "priors": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
