"""vae-train then vae-eval on the built-in digits, through the installed console scripts."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def script(name):
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


@pytest.mark.slow
def test_train_then_eval_on_digits(tmp_path):
    out = tmp_path / "run"
    train = subprocess.run(
        [
            script("vae-train"),
            "--dataset",
            "digits",
            "--arch",
            "mlp",
            "--hidden",
            "128",
            "--latent-dim",
            "4",
            "--epochs",
            "3",
            "--kl-warmup-epochs",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr
    assert "done: 3 epochs" in train.stdout
    assert "epoch 3/3" in train.stderr  # per-epoch lines beside the progress bar
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "mlp" and config["data"]["image_shape"] == [1, 8, 8]
    assert config["versions"]["torch"].startswith("2.")
    evaluate = subprocess.run([script("vae-eval"), str(out), "--k", "20"], capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr
    result = json.loads((out / "eval.json").read_text())["torch"]
    assert 0 < result["test_iwae_nll"] < result["test_neg_elbo"] < 60
    assert result["active_units"] >= 1


def test_help_has_an_example():
    for name in ("vae-train", "vae-eval", "vae-export", "vae-generate", "vae-plot", "vae-score"):
        shown = subprocess.run([script(name), "--help"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "Example" in shown.stdout


def test_missing_extra_is_named(monkeypatch):
    import builtins

    from vaeport.runtime.errors import MissingExtraError, require_module

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(MissingExtraError, match=r"pip install 'vaeport\[train\]'"):
        require_module("torch", "train", "vae-train")


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            script("vae-train"),
            "--dataset",
            "digits",
            "--epochs",
            "400",
            "--batch-size",
            "16",
            "--hidden",
            "64",
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored, and Python then
        # keeps ignoring it: give the child the default disposition so Ctrl-C reaches it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted (SIGINT) at epoch" in stderr and "--resume" in stderr
    state_epochs = len((out / "metrics.jsonl").read_text().splitlines())
    assert 1 <= state_epochs < 400
    resumed = subprocess.run(
        [script("vae-train"), "--out", str(out), "--resume", "--epochs", str(state_epochs + 2), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == state_epochs + 2
