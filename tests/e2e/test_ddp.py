"""Two gloo processes under torchrun train exactly like one process with the same global batch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BIN = Path(sys.executable).parent
ARGS = [
    "--dataset",
    "digits",
    "--hidden",
    "64",
    "--latent-dim",
    "4",
    "--epochs",
    "2",
    "--batch-size",
    "100",
    "--lr",
    "3e-3",
    "--kl-warmup-epochs",
    "1",
    "--quiet",
    "--threads",
    "1",
]


def torchrun() -> str | None:
    return str(BIN / "torchrun") if (BIN / "torchrun").exists() else shutil.which("torchrun")


def torchrun_train(*args: str) -> subprocess.CompletedProcess:
    """`vae-train` as 2 gloo processes under torchrun on this machine."""
    cmd = [torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "vaeport.train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--objective", "iwae", "--samples", "3"]], ids=["elbo", "iwae"])
def test_two_processes_match_one(tmp_path, extra):
    single = subprocess.run(
        [str(BIN / "vae-train"), *ARGS, *extra, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    multi = torchrun_train(*ARGS, *extra, "--out", str(tmp_path / "two"))
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    for name, weight in one["model"].items():
        torch.testing.assert_close(two["model"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
    rows_one = [json.loads(r) for r in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    rows_two = [json.loads(r) for r in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows_one, rows_two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["test_neg_elbo"] == pytest.approx(a["test_neg_elbo"], rel=1e-4)
    # only rank 0 wrote: one set of files, no stray temporaries
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


@pytest.mark.slow
def test_resume_under_torchrun(tmp_path):
    out = tmp_path / "run"
    first = torchrun_train(*ARGS, "--out", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = torchrun_train("--out", str(out), "--resume", "--epochs", "3", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
