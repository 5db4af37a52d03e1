"""The sample-quality judge of benchmarks/conditional.py: a small seeded Fashion-MNIST CNN, trained
from its recipe here in a minute or two (nothing is downloaded), and the Frechet distance on its
penultimate features.

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

# The recipe: two 3x3 conv stages (32, 64 channels, max-pooled) and a 128-unit layer, Adam 1e-3,
# batch 128, 6 epochs, seed 0.
EPOCHS = 6
BATCH = 128
LR = 1e-3
SEED = 0
FEATURES = 128


class FashionCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 64, 7, 7)
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURES),
            nn.ReLU(),  # (N, 128): the features the Frechet distance uses
        )
        self.head = nn.Linear(FEATURES, classes)

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


def train_judge(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> Judge:
    """Train the recipe (seeded: the same weights on the same machine and torch) and test it."""
    torch.manual_seed(SEED)
    model = FashionCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
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
