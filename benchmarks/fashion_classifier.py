"""The sample-quality judges of benchmarks/conditional.py: small seeded Fashion-MNIST CNNs, trained
from their recipes here in a minute or two each (nothing is downloaded), and the Frechet distance
on the penultimate features.

Two recipes share one shape (two 3x3 conv stages of 32 and 64 channels, max-pooled, and a
128-unit layer): `plain` (Adam 1e-3, 6 epochs; about 91% on the test set) is the judge of record;
`batchnorm` adds batch normalisation, dropout and a one-cycle learning rate (about 92%) and gives
a second opinion, because how often samples are "recognised" depends on the judge as well as on
the samples.

The distance is the FID formula (Heusel et al. 2017) on this classifier's 128 features instead of
Inception-v3's 2048: comparable between models scored with this same classifier, not with
published FID numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

EPOCHS = 6
BATCH = 128
SEED = 0
FEATURES = 128


@dataclass(frozen=True)
class Recipe:
    about: str
    batchnorm: bool  # BatchNorm after each conv, dropout 0.25 before both linear layers
    lr: float  # Adam; the peak of the one-cycle schedule when one_cycle
    one_cycle: bool


RECIPES = {
    "plain": Recipe("2 conv stages + 128 units, Adam 1e-3, 6 epochs, seed 0", False, 1e-3, False),
    "batchnorm": Recipe(
        "the same with BatchNorm and dropout 0.25, Adam with a one-cycle lr peaking at 2e-3, 6 epochs, seed 0",
        True,
        2e-3,
        True,
    ),
}


def conv_stage(c_in: int, c_out: int, batchnorm: bool) -> list[nn.Module]:
    norm = [nn.BatchNorm2d(c_out)] if batchnorm else []
    return [nn.Conv2d(c_in, c_out, 3, padding=1), *norm, nn.ReLU(), nn.MaxPool2d(2)]


class FashionCNN(nn.Module):
    def __init__(self, classes: int = 10, batchnorm: bool = False) -> None:
        super().__init__()
        dropout = [nn.Dropout(0.25)] if batchnorm else []
        self.body = nn.Sequential(
            *conv_stage(1, 32, batchnorm),  # (N, 32, 14, 14)
            *conv_stage(32, 64, batchnorm),  # (N, 64, 7, 7)
            nn.Flatten(),
            *dropout,
            nn.Linear(64 * 7 * 7, FEATURES),
            nn.ReLU(),  # (N, 128): the features the Frechet distance uses
        )
        self.head = nn.Sequential(*dropout, nn.Linear(FEATURES, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class Judge:
    """The trained classifier: labels and penultimate features of [N, 1, 28, 28] images in [0, 1]."""

    model: FashionCNN
    test_accuracy: float
    train_seconds: float

    @torch.no_grad()
    def _run(self, images: np.ndarray, part: str) -> np.ndarray:
        self.model.eval()
        out = []
        for start in range(0, len(images), 1000):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + 1000], dtype=np.float32))
            h = self.model.body(x)
            out.append((h if part == "features" else self.model.head(h).argmax(1)).numpy())
        return np.concatenate(out)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, "labels")

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, "features").astype(np.float64)


def train_judge(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, recipe: str = "plain"
) -> Judge:
    """Train a recipe of RECIPES (seeded: the same weights on the same machine and torch) and test it."""
    spec = RECIPES[recipe]
    torch.manual_seed(SEED)
    model = FashionCNN(batchnorm=spec.batchnorm)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    steps = EPOCHS * -(-len(train_x) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, spec.lr, total_steps=steps) if spec.one_cycle else None
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y.astype(np.int64))
    order = torch.Generator().manual_seed(SEED)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(x), generator=order)
        for start in range(0, len(x), BATCH):
            idx = perm[start : start + BATCH]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
    seconds = time.perf_counter() - started
    judge = Judge(model, 0.0, seconds)
    judge.test_accuracy = float((judge.predict(test_x) == test_y).mean())
    return judge


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets [N, F].

    Tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric S_a^(1/2) S_b S_a^(1/2) (the same eigenvalues), which stays exact when features that
    never fire (ReLU) make the covariances singular."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
