"""Training images/s: the classic tutorial loop vs vaeport's trainer, side by side in one run.

Both train the same MLP VAE (784-400-20, batch 128, Adam 1e-3, Bernoulli) for one epoch on
Fashion-MNIST (synthetic 60000x784 data when it is not installed). The runs alternate
(tutorial, vaeport, tutorial, ...) and the medians are compared, because these machines' speed
drifts within minutes. Also reports the conv model's images/s.

    python benchmarks/train_throughput.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

from vaeport.runtime.errors import InputError
from vaeport.train.config import TrainConfig
from vaeport.train.datasets import ImageData, load_dataset
from vaeport.train.stop import StopRequest
from vaeport.train.trainer import Trainer


class TutorialVAE(nn.Module):
    """The model of pytorch/examples vae/main.py."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def tutorial_loss(recon_x, x, mu, logvar):  # pytorch/examples: BCE summed over the batch + KLD
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def tutorial_epoch(train: np.ndarray, seed: int) -> float:
    """One epoch of the tutorial loop; returns images/s."""
    torch.manual_seed(seed)
    model = TutorialVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.from_numpy(train)), batch_size=128, shuffle=True)
    model.train()
    started = time.perf_counter()
    train_loss = 0.0
    for (data,) in loader:
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = tutorial_loss(recon, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return len(train) / (time.perf_counter() - started)


def vaeport_epoch(data: ImageData, model: dict[str, object], seed: int) -> float:
    """One epoch of vaeport's Trainer (training steps only, as the tutorial is timed); images/s."""
    cfg = TrainConfig(epochs=1, batch_size=128, lr=1e-3, seed=seed, **model)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, data, Path(run_dir), show_progress=False)
        started = time.perf_counter()
        perm = torch.randperm(len(trainer.train_x), generator=trainer.data_rng)
        trainer.run_epoch(perm, trainer.steps_per_epoch, _NoBar(), StopRequest())
        return len(data.train) / (time.perf_counter() - started)


class _NoBar:
    def set_postfix(self, **_: object) -> None: ...
    def update(self, _: int) -> None: ...


def fashion_or_synthetic() -> tuple[ImageData, str]:
    try:
        return load_dataset("fashion-mnist"), "fashion-mnist"
    except InputError:
        rng = np.random.default_rng(0)
        train = (rng.random((60000, 1, 28, 28)) < 0.3).astype(np.float32)
        test = train[:1000]
        return ImageData("synthetic", train, test, None, None, "synthetic", "random"), "synthetic 60000x784"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conv-hidden", default="32,64", help="channels of the conv model measured")
    args = parser.parse_args()
    data, source = fashion_or_synthetic()
    mlp = {"latent_dim": 20, "arch": "mlp", "hidden": (400,)}
    conv = {"latent_dim": 20, "arch": "conv", "hidden": args.conv_hidden}
    flat = data.train.reshape(len(data.train), 784)
    tutorial, ours, conv_rates = [], [], []
    for r in range(args.repeats):
        tutorial.append(tutorial_epoch(flat, seed=r))
        ours.append(vaeport_epoch(data, mlp, seed=r))
        conv_rates.append(vaeport_epoch(data, conv, seed=r))
        print(f"repeat {r + 1}: tutorial {tutorial[-1]:.0f}  vaeport {ours[-1]:.0f}  conv {conv_rates[-1]:.0f} img/s")
    ratio = median(ours) / median(tutorial)
    rows = [
        ["tutorial DataLoader loop (MLP 784-400-20)", median(tutorial), 1.0],
        ["vaeport Trainer (same MLP)", median(ours), ratio],
        [f"vaeport Trainer (conv {args.conv_hidden})", median(conv_rates), median(conv_rates) / median(tutorial)],
    ]
    print(f"\ndata: {source}; torch threads {torch.get_num_threads()}; median of {args.repeats} alternating repeats")
    print_table(["loop", "images/s", "x tutorial"], rows)
    path = write_result(
        "train_throughput",
        {
            "data": source,
            "torch_threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "images_per_second": {"tutorial": tutorial, "vaeport_mlp": ours, "vaeport_conv": conv_rates},
            "median_images_per_second": {r[0]: r[1] for r in rows},
            "vaeport_over_tutorial": ratio,
            "target": ">= 1.5x",
            "meets_target": bool(ratio >= 1.5 and math.isfinite(ratio)),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
