"""benchmarks/conditional_trials.py: every trial is a valid conditional recipe, and judging a run
scores each class's own samples."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from conditional_trials import PER_CLASS, TRIALS, judged_samples, trial_settings

from vaeport.train import TrainConfig, fit

from ..conftest import write_idx_set
from ..helpers import write_idx


@pytest.mark.parametrize("name", sorted(TRIALS))
def test_every_trial_is_the_shipped_conditional_recipe_with_its_changes(name):
    changes = TRIALS[name][1]
    config = TrainConfig.from_dict(trial_settings(changes, 20))
    shipped = TrainConfig.from_dict(trial_settings({}, 20))
    assert config.conditional and config.epochs == 20 and config.kl_warmup_epochs == pytest.approx(20 / 3)
    assert config.replace(**{key: getattr(shipped, key) for key in changes}) == shipped


class ConstantJudge:
    """Calls every image class `answer` and records how many it saw."""

    def __init__(self, answer: int) -> None:
        self.answer, self.seen = answer, 0

    def predict(self, images: np.ndarray) -> np.ndarray:
        assert images.shape[1:] == (1, 28, 28) and images.dtype == np.float32
        self.seen += len(images)
        return np.full(len(images), self.answer)


def test_judged_samples_scores_each_class_on_its_own_samples(tmp_path):
    data_dir = write_idx_set(tmp_path / "idx")
    for prefix, n in (("train", 96), ("t10k", 32)):  # every class has images (a conditional run needs them)
        write_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    config = TrainConfig(
        dataset="mnist",
        data_dir=str(data_dir),
        conditional=True,
        hidden=(16,),
        latent_dim=2,
        epochs=1,
        batch_size=32,
        threads=1,
    )
    run = fit(config, tmp_path / "run", quiet=True)
    judge = ConstantJudge(answer=3)
    result = judged_samples(run.path, judge)
    assert judge.seen == 10 * PER_CLASS
    assert list(result["per_class"].values()) == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert result["label_accuracy"] == pytest.approx(0.1)
