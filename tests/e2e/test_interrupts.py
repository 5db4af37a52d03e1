"""Real signals at random moments, in subprocesses: training resumed after Ctrl-C is bit-identical
to an uninterrupted run, and generation resumed after SIGKILL or Ctrl-C writes the same files with
nothing left over."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

BIN = Path(sys.executable).parent
TIMING = {"images_per_second", "seconds", "eval_seconds"}  # wall-clock figures differ between runs
TRAIN = [
    "--dataset", "digits", "--arch", "mlp", "--hidden", "256", "--latent-dim", "8", "--epochs", "14",
    "--batch-size", "8", "--lr-schedule", "cosine", "--kl-warmup-epochs", "2", "--threads", "1", "--quiet",
]  # fmt: skip


def start(args: list[str]) -> subprocess.Popen:
    # A shell without job control starts background jobs with SIGINT ignored, and Python then keeps
    # ignoring it: give the child the default disposition so Ctrl-C reaches it as it would a user's.
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def assert_same_state(a: dict, b: dict, where: str = "") -> None:
    """Every tensor (weights, optimizer moments, RNG states) and every other value, recursively;
    wall-clock fields excepted."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            if key not in TIMING and key != "train_seconds":
                assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def epochs_done(run: Path) -> int:
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


def interrupt_training(run: Path, delay: float) -> str:
    """Start training into `run` (or resume it); once this process has finished an epoch, send
    SIGINT `delay` s later (so the signal lands somewhere in training: a step, the evaluation, a
    checkpoint write)."""
    args = [str(BIN / "vae-train"), *TRAIN, "--out", str(run)]
    resume = (run / "last.pt").exists()
    before = epochs_done(run)
    proc = start([*args, "--resume"] if resume else args)
    while epochs_done(run) == before and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    # Finished before the signal, or the signal came while the interpreter was shutting down after
    # the last epoch was saved (Python then dies of SIGINT itself): the resume below checks the rest.
    if proc.returncode in (0, -signal.SIGINT):
        return "finished"
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("vae-train: interrupted"), stderr
    # Before training started (loading data), nothing is saved; during training the step in
    # progress finishes and last.pt is saved.
    return "in training" if "(SIGINT) at epoch" in stderr and "continue with --resume" in stderr else "early"


@pytest.mark.slow
def test_ctrl_c_at_random_moments_then_resume_is_bit_identical(tmp_path):
    ref = tmp_path / "ref"
    proc = start([str(BIN / "vae-train"), *TRAIN, "--out", str(ref)])
    while not (ref / "config.json").exists() and proc.poll() is None:
        time.sleep(0.01)
    started = time.perf_counter()  # training begins
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    epoch = (time.perf_counter() - started) / epochs_done(ref)
    rng = random.Random(1234)
    interrupted = 0
    for trial in range(4):
        run = tmp_path / f"cut{trial}"
        for _ in range(1 + trial % 2):  # trials 1 and 3 are interrupted twice
            if interrupt_training(run, rng.uniform(0.0, 2.0 * epoch)) == "in training":
                interrupted += 1
        # Resume with the very same command plus --resume: flags equal to the saved ones are accepted.
        resumed = subprocess.run(
            [str(BIN / "vae-train"), *TRAIN, "--out", str(run), "--resume"], capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stderr
        assert metrics(run) == metrics(ref), trial
        for name in ("last.pt", "best.pt"):
            assert_same_state(
                torch.load(run / name, weights_only=True), torch.load(ref / name, weights_only=True), name
            )
    assert interrupted >= 3  # most signals landed while training ran


GENERATE = ["-n", "6000", "--chunk-size", "500", "--batch-size", "100", "--seed", "3", "--quiet"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def files_of(folder: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("generate-"):
            found[str(path.relative_to(folder))] = path.read_bytes()
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "sig"), [("npy", signal.SIGKILL), ("png", signal.SIGKILL), ("png", signal.SIGINT)])
def test_generate_killed_at_random_moments_then_resumed_writes_the_same_files(digits_model, tmp_path, fmt, sig):
    args = [str(BIN / "vae-generate"), str(digits_model), *GENERATE, "--format", fmt]
    ref = tmp_path / "ref"
    proc = start([*args, "--out", str(ref)])
    proc.stderr.readline()  # the model's line: loaded, generation starts now
    started = time.perf_counter()
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    work = time.perf_counter() - started
    out = tmp_path / "cut"
    rng = random.Random(7)
    stopped = 0
    for _ in range(4):
        # files_of also counts what a killed run left in temporary folders: never below "none left"
        left = max(0.0, 1 - (len(files_of(out)) / len(files_of(ref)) if out.exists() else 0))
        proc = start([*args, "--out", str(out)])
        # Timed from the child's own "loaded" line, not from its start: how long imports take
        # (a fresh venv compiles its .pyc files on the first run) must not decide where the
        # signal lands.
        proc.stderr.readline()
        time.sleep(rng.uniform(0.05, 0.95) * left * work)  # while this run still has work to do
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL, 130)
        stopped += proc.returncode != 0
    final = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert stopped >= 2
    assert files_of(out) == files_of(ref)
    assert leftovers(out) == []
    record = json.loads((out / "generate-0-of-1.json").read_text())
    assert record["complete"] and len(record["chunks"]) == 12


def corrupt(path: Path, how: str) -> None:
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_damaged_chunks_are_rewritten_not_trusted(digits_model, tmp_path, how):
    from vaeport.runtime import VAE
    from vaeport.runtime.generate import GenerateSpec, generate

    vae = VAE.load(digits_model, device="cpu")
    spec = GenerateSpec(n=3000, seed=2, chunk_size=1000)
    generate(vae, spec, tmp_path / "ref")
    generate(vae, spec, tmp_path / "out")
    corrupt(tmp_path / "out" / "images-0000001000-0000001999.npy", how)
    summary = generate(vae, spec, tmp_path / "out")
    assert summary["images_written"] == 1000 and summary["images_skipped"] == 2000
    assert summary["chunks_replaced"] == 1
    assert files_of(tmp_path / "out") == files_of(tmp_path / "ref")
    np.load(tmp_path / "out" / "images-0000001000-0000001999.npy")  # readable again


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once_and_keeps_a_whole_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = start([str(BIN / "vae-train"), *TRAIN, "--out", str(run)])
    while epochs_done(run) == 0 and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    state = torch.load(run / "last.pt", weights_only=True)  # whole: either epoch 1's or the stopped step's
    assert state["progress"]["epoch"] >= 1
    resumed = subprocess.run([str(BIN / "vae-train"), *TRAIN, "--out", str(run), "--resume"], capture_output=True)
    assert resumed.returncode == 0


def test_a_second_generation_of_the_same_shard_is_refused_while_the_first_runs(digits_model, tmp_path):
    from vaeport.runtime import VAE, InputError
    from vaeport.runtime.generate import GenerateSpec, generate, shard_lock

    spec = GenerateSpec(n=100, seed=0)
    tmp_path.mkdir(exist_ok=True)
    with shard_lock(tmp_path, spec):  # what a running vae-generate holds
        with pytest.raises(InputError, match="another vae-generate is writing shard 0/1 there"):
            generate(VAE.load(digits_model, device="cpu"), spec, tmp_path)
        other = generate(
            VAE.load(digits_model, device="cpu"), GenerateSpec(n=100, seed=0, shard=(0, 1)), tmp_path / "x"
        )
        assert other["images_written"] == 100
    assert generate(VAE.load(digits_model, device="cpu"), spec, tmp_path)["images_written"] == 100
    assert leftovers(tmp_path) == []
