"""Every bad input of vae-train gives one line naming what was expected, exit 2, nothing written."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vaeport.train.cli import main as train_main
from vaeport.train.eval_cli import main as eval_main


def run(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "cifar"], "unknown dataset 'cifar': expected one of digits"),
        (["--latent-dim", "0"], "Invalid value for '--latent-dim': 0 is not in the range x>=1"),
        (["--batch-size", "5000"], "expected --batch-size at most the 1617 training images"),
        (["--dataset", "mnist", "--data-dir", "{tmp}/none"], "expected the four mnist IDX files"),
        (["--hidden", "a,b"], "expected --hidden as comma-separated integers"),
        (["--dataset", "folder:{tmp}/none"], "expected a folder of PNG/JPEG images"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, message):
    out = tmp_path / "run"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _stdout, stderr = run(train_main, [*args, "--out", out, "--quiet"])
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and message in stderr
    assert not out.exists()


def test_truncated_idx_is_refused(tmp_path, idx_dir):
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    import gzip

    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    code, _, stderr = run(
        train_main, ["--dataset", "mnist", "--data-dir", idx_dir, "--out", tmp_path / "run", "--quiet"]
    )
    assert code == 2 and "truncated" in stderr
    assert not (tmp_path / "run").exists()


def test_mixed_image_sizes_are_refused(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "b.png")
    code, _, stderr = run(train_main, ["--dataset", f"folder:{tmp_path}", "--out", tmp_path / "run", "--quiet"])
    assert code == 2 and "expected images of one size" in stderr


def test_existing_out_needs_resume_or_force(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = run(train_main, ["--out", out, "--quiet", "--epochs", "1"])
    assert code == 2 and "use --resume to continue it or --force" in stderr
    code, _, stderr = run(train_main, ["--out", out, "--quiet", "--epochs", "1", "--force"])
    assert code == 2 and "not a vaeport run folder" in stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_train_resume_force_and_eval(tmp_path):
    out = tmp_path / "run"
    base = ["--out", out, "--quiet", "--latent-dim", "3", "--hidden", "16", "--threads", "1"]
    code, stdout, stderr = run(train_main, [*base, "--epochs", "1"])
    assert code == 0, stderr
    code, _, stderr = run(train_main, ["--out", out, "--resume", "--epochs", "2", "--quiet"])
    assert code == 0, stderr
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]
    assert json.loads((out / "config.json").read_text())["epochs"] == 2
    code, _, stderr = run(train_main, ["--out", out, "--resume", "--lr", "0.1", "--latent-dim", "4", "--hidden", "16"])
    assert code == 2 and stderr.count("\n") == 1
    assert "--lr: saved 0.001, given 0.1; --latent-dim: saved 3, given 4 (only" in stderr
    # The same command again with --resume (and a longer --epochs) is accepted: its flags equal the saved ones.
    code, _, stderr = run(train_main, [*base, "--epochs", "3", "--resume"])
    assert code == 0, stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    code, stdout, stderr = run(eval_main, [out, "--k", "5"])
    assert code == 0, stderr
    assert "IWAE-5 bound on -log p(x)" in stdout
    record = json.loads((out / "eval.json").read_text())
    assert record["format"] == "vaeport-eval" and set(record) == {"format", "format_version", "torch"}
    result = record["torch"]
    assert result["test_iwae_nll"] <= result["test_neg_elbo"] + 1.0 and result["checkpoint"] == "best.pt"
    code, _, stderr = run(train_main, [*base, "--epochs", "1", "--force"])
    assert code == 0, stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_eval_missing_run_folder(tmp_path):
    code, _, stderr = run(eval_main, [tmp_path / "nope"])
    assert code == 2 and "expected a run folder" in stderr
