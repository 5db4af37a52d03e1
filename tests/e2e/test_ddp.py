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
@pytest.mark.parametrize(
    "extra",
    [[], ["--objective", "iwae", "--samples", "3"], ["--batch-size", "16"]],
    ids=["elbo", "iwae", "last-batch-of-one"],  # 1617 images: the last batch of 16 has 1, rank 1 gets none
)
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


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_both_at_the_same_step_and_resume_matches(tmp_path):
    """SIGTERM (a scheduler's preemption) reaching only rank 1: the request rides on the step's
    all-reduce, both ranks finish the same step, rank 0 saves it, and resuming gives exactly the
    weights of a 2-process run never interrupted."""
    import signal
    import time

    import psutil

    args = [*ARGS[: ARGS.index("--epochs")], "--epochs", "30", *ARGS[ARGS.index("--epochs") + 2 :]]
    args[args.index("--batch-size") + 1] = "16"
    reference = torchrun_train(*args, "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    out = tmp_path / "cut"
    cmd = [torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "vaeport.train", *args, "--out", str(out)]
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    workers = [p for p in psutil.Process(agent.pid).children(recursive=True) if "--out" in p.cmdline()]
    rank1 = next(p for p in workers if p.environ().get("RANK") == "1")
    rank1.send_signal(signal.SIGTERM)
    _, stderr = agent.communicate(timeout=120)
    assert agent.returncode != 0
    assert "interrupted (SIGTERM) at epoch" in stderr, stderr[-3000:]
    state = torch.load(out / "last.pt", weights_only=True)
    assert 1 <= state["progress"]["epoch"] < 30 and state["progress"]["step"] > 0  # mid-epoch, at a step boundary
    resumed = torchrun_train("--out", str(out), "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref = torch.load(tmp_path / "ref" / "last.pt", weights_only=True)
    got = torch.load(out / "last.pt", weights_only=True)
    for name, weight in ref["model"].items():
        assert torch.equal(got["model"][name], weight), name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())
