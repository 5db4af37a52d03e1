import pytest
import torch

from vaeport.train.config import ModelConfig, TrainConfig
from vaeport.train.datasets import load_dataset
from vaeport.train.evaluate import iwae_nll, latent_statistics, neg_elbo
from vaeport.train.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = load_dataset("digits", seed=0)
    cfg = TrainConfig(
        epochs=3, batch_size=100, lr=3e-3, threads=1, model=ModelConfig((1, 8, 8), latent_dim=6, hidden=(64,))
    )
    trainer = Trainer(cfg, data, tmp_path_factory.mktemp("run"), show_progress=False)
    trainer.fit()
    return trainer.model, torch.from_numpy(data.test)


def test_iwae_bound_is_tighter_than_elbo_and_grows_tighter_with_k(trained):
    model, test = trained
    elbo = neg_elbo(model, test, 1000, torch.Generator().manual_seed(0))["neg_elbo"]
    iwae_1 = iwae_nll(model, test, 1, torch.Generator().manual_seed(0))
    iwae_50 = iwae_nll(model, test, 50, torch.Generator().manual_seed(0))
    assert iwae_50 < elbo
    assert iwae_50 < iwae_1
    assert iwae_1 == pytest.approx(elbo, rel=0.02)  # k=1 is a (differently sampled) ELBO


def test_iwae_batching_does_not_change_the_value(trained):
    model, test = trained
    small = iwae_nll(model, test[:40], 10, torch.Generator().manual_seed(5), max_decode=30)
    large = iwae_nll(model, test[:40], 10, torch.Generator().manual_seed(5), max_decode=10_000)
    # Different batching draws eps in a different order: equal only in distribution.
    assert small == pytest.approx(large, rel=0.02)


def test_latent_statistics(trained):
    model, test = trained
    stats = latent_statistics(model, test, 64)
    assert stats["latent_dim"] == 6
    assert 1 <= stats["active_units"] <= 6
    assert len(stats["kl_per_dim"]) == 6 and all(v >= 0 for v in stats["kl_per_dim"])
