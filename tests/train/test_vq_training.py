"""--model vqvae's training: its options and refusals, the two stages, Ctrl-C and resume in either."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from vaeport.runtime.errors import InputError, Interrupted
from vaeport.train import TrainConfig, fit
from vaeport.train.checkpoint import LAST
from vaeport.train.datasets import load_dataset
from vaeport.train.vq_trainer import VQTrainer

from ..conftest import VQ_SETTINGS


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def config(**overrides):
    base = dict(dataset="digits", epochs=2, prior_epochs=2, batch_size=200, lr=3e-3, threads=1, **VQ_SETTINGS)
    return TrainConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(prior="flow"), "expected --prior 'normal' with --model vqvae"),
        (dict(beta=4.0), "expected --beta 1.0 with --model vqvae"),
        (dict(objective="iwae", samples=4), "expected --objective 'elbo' with --model vqvae"),
        (dict(kl_warmup_epochs=2.0), "expected --kl-warmup-epochs 0.0 with --model vqvae"),
        (dict(arch="mlp"), "expected --arch 'conv' with --model vqvae"),
        (dict(likelihood="gaussian"), "expected --likelihood 'bernoulli' with --model vqvae"),
        (dict(codebook_size=1), "expected --codebook-size >= 2, got 1"),
        (dict(prior_width=30, prior_heads=4), "expected --prior-width to be a multiple of --prior-heads"),
    ],
)
def test_options_that_do_not_apply_are_refused(overrides, message):
    with pytest.raises(InputError, match=message):
        config(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(codebook_size=64), r"expected --codebook-size only with --model vqvae, got it \(64\) with --model vae"),
        (dict(kind="ae", prior_epochs=3), "expected --prior-epochs only with --model vqvae, got it .3. with --model ae"),
        (dict(prior_lr_schedule="cosine"), "expected --prior-lr-schedule only with --model vqvae"),
        (dict(prior_precision="bf16"), "expected --prior-precision only with --model vqvae"),
    ],
)
def test_the_vq_options_are_refused_for_another_family(overrides, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(dataset="digits", **overrides)


def test_the_cli_refuses_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vaeport.train", "--dataset", "digits", "--model", "vqvae", "--beta", "4"]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "expected --beta 1.0 with --model vqvae" in lines[0], done.stderr
    assert not out.exists()


def test_defaults_follow_the_family():
    vq = TrainConfig(kind="vqvae")
    assert (vq.arch, vq.hidden) == ("conv", (64, 128))
    assert TrainConfig().arch == "mlp"  # a VAE's default is unchanged


def test_two_stages_train_the_autoencoder_then_the_prior(tmp_path, digits):
    trainer = VQTrainer(config(epochs=3, prior_epochs=3), digits, tmp_path, show_progress=False)
    history = trainer.fit()
    assert [r["stage"] for r in history] == ["autoencoder"] * 3 + ["prior"] * 3
    first, second = history[:3], history[3:]
    assert first[-1]["test_recon"] < first[0]["test_recon"]
    # the first stage's bound uses the uniform prior over the codes: h * w * log K nats
    assert first[0]["test_kl"] == pytest.approx(16 * np.log(16))
    # the prior's stage leaves the autoencoder as it was, and learns a prior better than uniform
    assert {r["test_recon"] for r in second} == {first[-1]["test_recon"]}
    assert second[-1]["test_kl"] < second[0]["test_kl"] < first[-1]["test_kl"]
    assert all(0 < r["codes_used"] <= 1 and r["perplexity"] >= 1 for r in history)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_the_frozen_autoencoder_is_evaluated_once_in_the_prior_stage(tmp_path, digits, monkeypatch):
    """Its test figures cannot change while it is frozen: one evaluation per autoencoder epoch, then
    one for the whole prior stage, and every prior epoch reports the same figures."""
    from vaeport.train import vq_trainer

    calls = []
    real = vq_trainer.autoencoder_test_metrics
    monkeypatch.setattr(vq_trainer, "autoencoder_test_metrics", lambda *a: calls.append(1) or real(*a))
    history = VQTrainer(config(epochs=2, prior_epochs=3), digits, tmp_path, show_progress=False).fit()
    assert len(calls) == 2 + 1
    for key in ("test_recon", "test_mse", "codes_used", "perplexity"):
        assert {r[key] for r in history[1:]} == {history[1][key]}


def test_prior_precision_bf16_trains_the_prior_under_autocast(tmp_path, digits):
    """--prior-precision bf16 changes the prior's arithmetic (its losses differ from fp32's in the
    low digits) but not what it learns, and leaves the autoencoder's stage exactly as it was."""
    runs = {}
    for precision in ("fp32", "bf16"):
        (tmp_path / precision).mkdir()
        trainer = VQTrainer(config(prior_precision=precision), digits, tmp_path / precision, show_progress=False)
        runs[precision] = trainer.fit()
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert fp32[:2] == [{**r, **{k: fp32[i][k] for k in ("seconds", "eval_seconds", "images_per_second")}}
                        for i, r in enumerate(bf16[:2])]  # fmt: skip
    for a, b in zip(fp32[2:], bf16[2:], strict=True):
        assert a["train_loss"] != b["train_loss"] and a["test_kl"] != b["test_kl"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.02)
        assert b["test_kl"] == pytest.approx(a["test_kl"], rel=0.02)


def test_a_cosine_schedule_decays_each_stage_on_its_own(tmp_path, digits):
    """--lr-schedule and --prior-lr-schedule cosine: each stage starts at --lr and decays toward 0
    by its own last step."""
    cfg = config(epochs=2, prior_epochs=2, lr_schedule="cosine", prior_lr_schedule="cosine")
    trainer = VQTrainer(cfg, digits, tmp_path, show_progress=False)
    per_epoch, lr = trainer.steps_per_epoch, trainer.cfg.lr
    rates = {}
    for epoch in range(4):
        trainer.progress.epoch = epoch
        rates[epoch] = [trainer.step_lr(epoch * per_epoch + s, 0) for s in range(per_epoch)]
    assert rates[0][0] == rates[2][0] == lr  # each stage starts afresh
    assert rates[1][-1] < 0.05 * lr and rates[3][-1] < 0.05 * lr
    assert rates[0] == rates[2] and rates[1] == rates[3]
    trainer.progress.epoch = 0
    history = trainer.fit()
    assert [r["lr"] for r in history] == pytest.approx([rates[e][-1] for e in range(4)])
    trainer = VQTrainer(config(epochs=2, prior_epochs=2, prior_lr_schedule="cosine"), digits, tmp_path / "p")
    trainer.progress.epoch = 1
    assert trainer.step_lr(2 * per_epoch - 1, 0) == lr  # the autoencoder's rate stays
    trainer.progress.epoch = 3
    assert trainer.step_lr(4 * per_epoch - 1, 0) == rates[3][-1]


@pytest.fixture
def sigint_handled():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("stop_at", [(0, 2), (2, 1)], ids=["autoencoder", "prior"])
def test_ctrl_c_and_resume_are_bit_identical_in_either_stage(tmp_path, digits, stop_at, sigint_handled):
    (tmp_path / "full").mkdir()
    full = VQTrainer(config(batch_size=128), digits, tmp_path / "full", show_progress=False)
    full.fit()

    def interrupt(epoch, step):
        if (epoch, step) == stop_at:
            os.kill(os.getpid(), signal.SIGINT)

    (tmp_path / "cut").mkdir()
    cut = VQTrainer(config(batch_size=128), digits, tmp_path / "cut", show_progress=False, on_step=interrupt)
    with pytest.raises(Interrupted, match="SIGINT"):
        cut.fit()
    resumed = VQTrainer(config(batch_size=128), digits, tmp_path / "cut", show_progress=False)
    resumed.restore(tmp_path / "cut" / LAST)
    # the request is acted on after the step in progress when it came
    assert (resumed.progress.epoch, resumed.progress.step) == (stop_at[0], stop_at[1] + 1)
    history = resumed.fit()
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [r["test_neg_elbo"] for r in history] == [r["test_neg_elbo"] for r in full.progress.history]


def test_resume_may_lengthen_the_prior_but_not_move_the_stage_boundary(tmp_path):
    run = fit(config(epochs=1, prior_epochs=1), tmp_path / "run", quiet=True)
    with pytest.raises(InputError, match="the prior's stage began after 1 autoencoder epochs; expected --epochs 1"):
        fit(config(epochs=2, prior_epochs=1), run.path, resume=True, quiet=True)
    longer = fit(config(epochs=1, prior_epochs=2), run.path, resume=True, quiet=True)
    assert [r["stage"] for r in longer.metrics] == ["autoencoder", "prior", "prior"]
    with pytest.raises(InputError, match="--epochs \\+ --prior-epochs of at least 3"):
        fit(config(epochs=1, prior_epochs=1), run.path, resume=True, quiet=True)
