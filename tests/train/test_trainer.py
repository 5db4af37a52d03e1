import json
import os
import signal

import numpy as np
import pytest
import torch

from vaeport.runtime.errors import Interrupted, TrainingError
from vaeport.train import checkpoint as checkpoint_module
from vaeport.train.checkpoint import LAST, load_checkpoint, save_checkpoint
from vaeport.train.config import TrainConfig
from vaeport.train.datasets import load_dataset
from vaeport.train.trainer import Trainer, kl_weight, learning_rate


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def config(**overrides):
    base = dict(
        dataset="digits",
        latent_dim=4,
        arch="mlp",
        hidden=(32,),
        epochs=2,
        batch_size=200,
        lr=3e-3,
        seed=0,
        threads=1,
        kl_warmup_epochs=1.0,
        lr_schedule="cosine",
    )
    return TrainConfig(**{**base, **overrides})


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_training_lowers_the_loss_and_writes_the_run(tmp_path, digits):
    trainer = Trainer(config(epochs=4), digits, tmp_path, show_progress=False)
    history = trainer.fit()
    assert history[-1]["test_neg_elbo"] < history[0]["test_neg_elbo"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for key in ("train_loss", "test_neg_elbo", "images_per_second", "seconds", "test_kl"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert (tmp_path / "best.pt").exists() and (tmp_path / LAST).exists()


def test_same_seed_same_numbers(tmp_path, digits):
    a = Trainer(config(), digits, tmp_path / "a", show_progress=False)
    b = Trainer(config(), digits, tmp_path / "b", show_progress=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ha, hb = a.fit(), b.fit()
    assert [r["test_neg_elbo"] for r in ha] == [r["test_neg_elbo"] for r in hb]
    for (name, wa), wb in zip(weights(a).items(), weights(b).values(), strict=True):
        assert torch.equal(wa, wb), name


@pytest.fixture
def sigint_handled():
    """Python's own Ctrl-C handler for the test, whatever the suite was started with: a suite started
    as a background job without job control (`make test &` from a script) inherits SIGINT ignored,
    and the trainer rightly keeps an ignored SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_resume_after_interrupt_matches_uninterrupted(tmp_path, digits, arch, sigint_handled):
    hidden = (8,) if arch == "conv" else (32,)
    (tmp_path / "full").mkdir()
    full = Trainer(config(epochs=3, arch=arch, hidden=hidden), digits, tmp_path / "full", show_progress=False)
    full.fit()

    def interrupt(epoch, step):
        if epoch == 1 and step == 3:  # a real SIGINT: acted on after the step in progress
            os.kill(os.getpid(), signal.SIGINT)

    (tmp_path / "cut").mkdir()
    cut = Trainer(
        config(epochs=3, arch=arch, hidden=hidden), digits, tmp_path / "cut", show_progress=False, on_step=interrupt
    )
    with pytest.raises(Interrupted, match="SIGINT.* at epoch 2 step 4"):
        cut.fit()
    resumed = Trainer(config(epochs=3, arch=arch, hidden=hidden), digits, tmp_path / "cut", show_progress=False)
    resumed.restore(tmp_path / "cut" / LAST)
    assert resumed.progress.epoch == 1 and resumed.progress.step == 4
    history = resumed.fit()
    for (name, wa), wb in zip(weights(full).items(), weights(resumed).values(), strict=True):
        assert torch.equal(wa, wb), name
    assert [r["test_neg_elbo"] for r in history] == [r["test_neg_elbo"] for r in full.progress.history]


def test_an_ignored_sigint_stays_ignored(tmp_path, digits):
    """A background job started without job control ignores Ctrl-C; training must not take it over."""

    def interrupt(epoch, step):
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        trainer = Trainer(config(epochs=2), digits, tmp_path, show_progress=False, on_step=interrupt)
        history = trainer.fit()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert [row["epoch"] for row in history] == [1, 2]


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / LAST
    save_checkpoint(path, {"value": torch.tensor([1.0])})

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"value": torch.tensor([2.0])})
    assert float(load_checkpoint(path)["value"]) == 1.0
    assert [p.name for p in tmp_path.iterdir()] == [LAST]


def test_non_finite_loss_stops_and_keeps_last_good(tmp_path, digits):
    def poison(epoch, step):
        if epoch == 1 and step == 2:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))

    trainer = Trainer(config(epochs=3), digits, tmp_path, show_progress=False, on_step=poison)
    with pytest.raises(TrainingError, match="non-finite loss \\(nan\\) at epoch 2 step 3"):
        trainer.fit()
    state = load_checkpoint(tmp_path / LAST)
    assert state["progress"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="expected a vaeport checkpoint, got a file of another kind"):
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="unreadable"):
        load_checkpoint(tmp_path / "y.pt")


def test_kl_warmup_and_lr_schedules():
    cfg = config(beta=2.0, kl_warmup_epochs=2.0, lr=1.0)
    assert kl_weight(cfg, 0, 10) == 0.0
    assert kl_weight(cfg, 10, 10) == 1.0
    assert kl_weight(cfg, 40, 10) == 2.0
    assert learning_rate(1.0, "cosine", 0, 100) == 1.0
    assert learning_rate(1.0, "cosine", 50, 100) == pytest.approx(0.5)
    assert learning_rate(1.0, "cosine", 100, 100) == pytest.approx(0.0)
    assert learning_rate(1.0, "constant", 50, 100) == 1.0
    # wsd: constant for the first 80% of steps, then a straight line to 0
    assert [learning_rate(1.0, "wsd", step, 100) for step in (0, 50, 80)] == pytest.approx([1.0, 1.0, 1.0])
    assert learning_rate(1.0, "wsd", 90, 100) == pytest.approx(0.5)
    assert learning_rate(1.0, "wsd", 100, 100) == pytest.approx(0.0)
