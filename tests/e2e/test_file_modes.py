"""What vaeport writes gets the modes the umask gives any file (0644 / 0755 under umask 022), so
another user or the next stage of a pipeline can read it; nothing machine-specific is written
into a model folder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from vaeport.export import export
from vaeport.runtime import VAE
from vaeport.runtime.atomic import atomic_folder, atomic_write_text
from vaeport.runtime.generate import GenerateSpec, generate
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.evaluation import save_eval

NOBODY = 65534


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_to(value: int) -> None:
        os.umask(value)

    yield set_to
    os.umask(previous)


@pytest.fixture
def shared_root():
    """A folder another user can traverse (pytest's own tmp folders are private to their owner)."""
    root = Path(tempfile.mkdtemp(prefix="vaeport-modes-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in sorted(root.rglob("*"))}


def write_everything(root: Path, digits_model: Path) -> None:
    """A run folder, its eval.json, a model folder, and .npy, PNG and grid generations."""
    run = fit(TrainConfig(hidden=(16,), latent_dim=2, epochs=1, threads=1), root / "run", quiet=True)
    save_eval(root / "run" / "eval.json", evaluate(run, k=2))
    export(run, root / "model", fp16=True)
    vae = VAE.load(digits_model, device="cpu")
    for fmt in ("npy", "png", "grid"):
        generate(vae, GenerateSpec(n=30, chunk_size=20 if fmt != "grid" else 10_000, format=fmt), root / fmt)
    atomic_write_text(root / "note.txt", "x")
    with atomic_folder(root / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")


@pytest.mark.parametrize(("mask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_written_files_follow_the_umask(tmp_path, digits_model, umask, mask, file_mode, folder_mode):
    umask(mask)
    write_everything(tmp_path, digits_model)
    found = modes(tmp_path)
    expected_files = {"run/config.json", "run/metrics.jsonl", "run/last.pt", "run/best.pt", "run/eval.json"}
    expected_files |= {"model/vae.json", "model/encoder.onnx", "model/decoder.fp16.onnx", "note.txt"}
    expected_files |= {"npy/images-0000000000-0000000019.npy", "npy/generate-0-of-1.json", "grid/grid.png"}
    expected_files |= {"png/png-0000000020-0000000029/0000000025.png", "folder/inside.txt"}
    for name in expected_files:
        assert found[name] == file_mode, (name, oct(found[name]))
    for name in ("model", "png/png-0000000000-0000000019", "folder", "run"):
        assert found[name] == folder_mode, (name, oct(found[name]))
    assert not [name for name in found if Path(name).name.startswith(".")]  # no temporary leftovers


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_another_user_can_read_what_was_written(shared_root, digits_model, umask):
    umask(0o022)
    write_everything(shared_root, digits_model)
    files = [str(p) for p in shared_root.rglob("*") if p.is_file()]
    folders = [str(p) for p in shared_root.rglob("*") if p.is_dir()]
    script = 'for f in "$@"; do if [ -d "$f" ]; then ls "$f" >/dev/null || exit 1; else cat "$f" >/dev/null || exit 1; fi; done'

    def as_nobody() -> None:
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    read = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *files, *folders], preexec_fn=as_nobody, capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr
    assert len(files) > 20


def absolute_paths(value, found=None):
    found = [] if found is None else found
    if isinstance(value, dict):
        for item in value.values():
            absolute_paths(item, found)
    elif isinstance(value, list):
        for item in value:
            absolute_paths(item, found)
    elif isinstance(value, str) and ("/" in value and (value.startswith("/") or ":/" in value)):
        found.append(value)
    return found


def test_model_folder_holds_nothing_machine_specific(tmp_path):
    npy = tmp_path / "data" / "shoes.npy"
    npy.parent.mkdir()
    import numpy as np

    np.save(npy, (np.random.default_rng(0).random((60, 8, 8)) * 255).astype(np.uint8))
    config = TrainConfig(dataset=f"npy:{npy}", hidden=(8,), latent_dim=2, epochs=1, batch_size=16, threads=1)
    run = fit(config, tmp_path / "run", quiet=True)
    export(run, tmp_path / "model")
    save_eval(tmp_path / "model" / "eval.json", evaluate(tmp_path / "model", k=2, dataset=f"npy:{npy}"))
    for name in ("vae.json", "eval.json"):
        text = (tmp_path / "model" / name).read_text()
        assert str(tmp_path) not in text, name
        assert absolute_paths(json.loads(text)) == [], name
    checkout = str(Path(__file__).resolve().parents[2]).encode()
    for path in (tmp_path / "model").iterdir():  # the graphs too: the exporter's stack traces are stripped
        data = path.read_bytes()
        assert checkout not in data and b"vae.py" not in data and str(tmp_path).encode() not in data, path.name
    training = json.loads((tmp_path / "model" / "vae.json").read_text())["training"]
    assert training["dataset"] == "npy:shoes.npy" and training["checkpoint"] == "best.pt"
    assert training["objective"] == "elbo" and training["samples"] == 1  # the whole config is recorded
    assert TrainConfig.from_dict(training) == config.replace(dataset="npy:shoes.npy")
