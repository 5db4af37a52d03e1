"""The error table: every error class exits with its documented code, in every command that can
raise it, with one line naming the problem (no traceback). Also the OS errors users cause:
occupied, misplaced and read-only output paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from vaeport.export.cli import main as export_main
from vaeport.runtime.cli import main as generate_main
from vaeport.runtime.errors import (
    ERRORS,
    DeviceError,
    ExportError,
    FileAccessError,
    InputError,
    Interrupted,
    MissingExtraError,
    ModelFolderError,
    ParityError,
    TrainingError,
)
from vaeport.runtime.session import cuda_available
from vaeport.train.cli import main as train_main
from vaeport.train.eval_cli import main as eval_main
from vaeport.train.plot_cli import main as plot_main

from ..helpers import make_run
from ..runtime.folders import copy_folder

COMMANDS = {
    "vae-train": train_main,
    "vae-eval": eval_main,
    "vae-export": export_main,
    "vae-generate": generate_main,
    "vae-plot": plot_main,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("codes") / "run", hidden=(16,), latent_dim=2)


@pytest.fixture
def tampered(digits_model, tmp_path):
    folder = copy_folder(digits_model, tmp_path / "tampered")
    data = bytearray((folder / "decoder.onnx").read_bytes())
    data[-7] ^= 0xFF
    (folder / "decoder.onnx").write_bytes(bytes(data))
    return folder


def invoke(command: str, args: list) -> tuple[int, str]:
    result = CliRunner().invoke(COMMANDS[command], [str(a) for a in args])
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stderr


def assert_one_line(command: str, code: int, stderr: str, expected: type) -> None:
    assert code == expected.exit_code, (command, stderr)
    errors = [line for line in stderr.splitlines() if ": error: " in line or line.endswith(": interrupted")]
    assert len(errors) == 1 and stderr.rstrip().splitlines()[-1] == errors[0], stderr


@contextlib.contextmanager
def read_only(folder: Path):
    """A folder nobody may write into: chmod for ordinary users; root ignores modes, so there the
    folder is made immutable (chattr +i), or the test is skipped where that is not allowed."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without chattr +i: no way to make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_every_error_class_has_its_own_code():
    codes = [cls.exit_code for cls in ERRORS]
    assert len(set(codes)) == len(codes) and 1 not in codes  # 1 is left to unexpected errors (bugs)
    assert InputError.exit_code == 2  # the same as click's usage errors


def test_input_errors(run_dir, digits_model, tmp_path):
    cases = [
        ("vae-train", ["--dataset", "cifar", "--out", tmp_path / "r"]),
        ("vae-train", ["--latent-dim", "0", "--out", tmp_path / "r"]),
        ("vae-eval", [run_dir, "--seed", "-1"]),
        ("vae-eval", [tmp_path / "no-such-run"]),
        ("vae-export", [run_dir]),
        ("vae-export", [run_dir, "--out", tmp_path / "m", "--opset", "11"]),
        ("vae-generate", [digits_model, "-n", "-5", "--out", tmp_path / "g"]),
        ("vae-generate", [digits_model, "-n", "5", "--shard", "x", "--out", tmp_path / "g"]),
        ("vae-plot", [run_dir, "--points", "3", "--out", tmp_path / "p"]),
    ]
    for command, args in cases:
        code, stderr = invoke(command, args)
        assert_one_line(command, code, stderr, InputError)
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_model_folder_errors(tampered, run_dir, tmp_path):
    cases = [
        ("vae-generate", [tampered, "-n", "5", "--out", tmp_path / "g"]),
        ("vae-generate", [tmp_path / "nowhere", "-n", "5", "--out", tmp_path / "g"]),
        ("vae-eval", [tampered, "--k", "2"]),
        ("vae-plot", [tampered, "--out", tmp_path / "p"]),
        ("vae-export", ["--verify", tampered, "--against", run_dir]),
    ]
    for command, args in cases:
        code, stderr = invoke(command, args)
        assert_one_line(command, code, stderr, ModelFolderError)


def test_missing_extra(monkeypatch, run_dir, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without(*names):
        def fake(name, *args, **kwargs):
            if name.split(".")[0] in names:
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)

        return fake

    for module in ("torch", "matplotlib"):
        monkeypatch.delitem(__import__("sys").modules, module, raising=False)
    monkeypatch.setattr(builtins, "__import__", without("torch", "matplotlib"))
    cases = [
        ("vae-train", ["--out", tmp_path / "r"]),
        ("vae-export", [run_dir, "--out", tmp_path / "m"]),
        ("vae-eval", [run_dir]),
        ("vae-plot", [run_dir, "--out", tmp_path / "p"]),
    ]
    for command, args in cases:
        code, stderr = invoke(command, args)
        assert_one_line(command, code, stderr, MissingExtraError)
        assert "pip install 'vaeport[train]'" in stderr


@pytest.mark.skipif(cuda_available() or torch.cuda.is_available(), reason="checks the error without CUDA")
def test_device_errors(digits_model, tmp_path):
    cases = [
        ("vae-generate", [digits_model, "-n", "5", "--device", "cuda", "--out", tmp_path / "g"]),
        ("vae-eval", [digits_model, "--device", "cuda"]),
        ("vae-train", ["--device", "cuda", "--out", tmp_path / "r"]),
    ]
    for command, args in cases:
        code, stderr = invoke(command, args)
        assert_one_line(command, code, stderr, DeviceError)
    assert not (tmp_path / "r").exists()


def test_file_access_errors(run_dir, digits_model, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    cases = [
        ("vae-generate", [digits_model, "-n", "5", "--out", a_file]),
        ("vae-generate", [digits_model, "-n", "5", "--out", a_file / "under"]),
        ("vae-eval", [run_dir, "--k", "2", "--out", a_file / "eval.json"]),
        ("vae-train", ["--out", a_file]),
        ("vae-train", ["--out", a_file / "run"]),
        ("vae-export", [run_dir, "--out", a_file / "model"]),
        ("vae-plot", [run_dir, "--out", a_file / "plots"]),
    ]
    for command, args in cases:
        code, stderr = invoke(command, args)
        assert_one_line(command, code, stderr, FileAccessError)
        assert str(a_file) in stderr
    assert a_file.read_text() == "mine"
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        code, stderr = invoke("vae-generate", [digits_model, "-n", "5", "--out", locked])
        assert_one_line("vae-generate", code, stderr, FileAccessError)
        assert f"--out {locked}: cannot write into this folder" in stderr
        code, stderr = invoke("vae-eval", [run_dir, "--k", "2", "--out", locked / "eval.json"])
        assert_one_line("vae-eval", code, stderr, FileAccessError)
    assert list(locked.iterdir()) == []


def test_export_error(run_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("an op the exporter cannot handle")

    monkeypatch.setattr(torch.onnx, "export", broken)
    code, stderr = invoke("vae-export", [run_dir, "--out", tmp_path / "m"])
    assert_one_line("vae-export", code, stderr, ExportError)
    assert "torch.onnx.export failed: an op the exporter cannot handle" in stderr
    assert not (tmp_path / "m").exists()


def test_parity_error(run_dir, tmp_path):
    invoke("vae-export", [run_dir, "--out", tmp_path / "m"])
    other = make_run(tmp_path / "other", hidden=(16,), latent_dim=2, epochs=2)
    code, stderr = invoke("vae-export", ["--verify", tmp_path / "m", "--against", other])
    assert_one_line("vae-export", code, stderr, ParityError)


def test_training_error(tmp_path, monkeypatch):
    from vaeport.train.trainer import Trainer

    real = Trainer.loss_terms

    def poisoned(self, *args):
        terms = real(self, *args)
        terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(Trainer, "loss_terms", poisoned)
    code, stderr = invoke("vae-train", ["--out", tmp_path / "r", "--quiet", "--epochs", "1"])
    assert_one_line("vae-train", code, stderr, TrainingError)
    assert "non-finite loss (nan) at epoch 1 step 1" in stderr


def test_interrupted(digits_model, tmp_path, monkeypatch):
    import vaeport.runtime.generate as gen

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "generate", ctrl_c)
    code, stderr = invoke("vae-generate", [digits_model, "-n", "5", "--out", tmp_path / "g", "--quiet"])
    assert_one_line("vae-generate", code, stderr, Interrupted)


def test_docs_list_every_code():
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for cls in ERRORS:
        assert f"| {cls.exit_code} | `{cls.__name__}` |" in page, cls.__name__
