"""vae-score: CSV of per-image scores from a folder, an .npy or an IDX file; --fit and --calibration."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vaeport.runtime import VAE, FileAccessError, InputError
from vaeport.runtime.score_cli import main as score_main
from vaeport.runtime.scoring import FIELDS
from vaeport.train.datasets import load_dataset

from ..helpers import write_idx


@pytest.fixture(scope="module")
def model(digits_model):
    return digits_model


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits", seed=0).test[:12]


def run(args):
    result = CliRunner().invoke(score_main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_npy_rows_match_the_api(model, images, tmp_path):
    np.save(tmp_path / "x.npy", images)
    code, stdout, stderr = run([model, tmp_path / "x.npy", "--out", tmp_path / "s.csv", "--k", "8", "--quiet"])
    assert code == 0, stderr
    assert "scored 12 images" in stdout and "no calibration" in stdout
    header, rows = read_csv(tmp_path / "s.csv")
    assert header == ["image", *FIELDS] and [r[0] for r in rows] == [str(i) for i in range(12)]
    api = VAE.load(model, device="cpu").score(images, k=8)
    np.testing.assert_allclose([float(r[1]) for r in rows], api["nll"], rtol=1e-5)
    assert all(r[FIELDS.index("anomaly") + 1] == "" and r[-1] == "" for r in rows)  # flagged unknown, not false


def test_folder_and_idx_inputs(model, images, tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, image in enumerate(images[:3]):
        Image.fromarray(np.rint(image[0] * 255).astype(np.uint8)).save(folder / ("sub" if i else ".") / f"{i}.png")
    code, _, stderr = run([model, folder, "--out", tmp_path / "f.csv", "--k", "4", "--quiet"])
    assert code == 0, stderr
    _, rows = read_csv(tmp_path / "f.csv")
    assert [r[0] for r in rows] == ["0.png", "sub/1.png", "sub/2.png"]
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.rint(images[:, 0] * 255).astype(np.uint8))
    code, _, stderr = run([model, tmp_path / "t10k-images-idx3-ubyte.gz", "--out", tmp_path / "i.csv", "--k", "4"])
    assert code == 0, stderr
    assert len(read_csv(tmp_path / "i.csv")[1]) == 12


def test_fit_then_score_with_the_calibration(model, tmp_path):
    normal = load_dataset("digits", seed=0).train[:600]
    np.save(tmp_path / "normal.npy", normal)
    code, stdout, stderr = run(
        [model, "--fit", tmp_path / "normal.npy", "--fpr", "0.05", "--out", tmp_path / "cal.json", "--k", "4"]
    )
    assert code == 0, stderr
    calibration = json.loads((tmp_path / "cal.json").read_text())
    assert (
        calibration["fpr"] == 0.05
        and calibration["images"] == 600
        and calibration["source"] == "600 images of normal.npy"
    )
    noise = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
    np.save(tmp_path / "noise.npy", noise)
    code, stdout, stderr = run(
        [model, tmp_path / "noise.npy", "--calibration", tmp_path / "cal.json", "--out", tmp_path / "n.csv", "--k", "4"]
    )
    assert code == 0, stderr
    _, rows = read_csv(tmp_path / "n.csv")
    assert all(r[-1] == "true" for r in rows) and "20 flagged" in stdout
    code, _, stderr = run(
        [
            model,
            tmp_path / "normal.npy",
            "--calibration",
            tmp_path / "cal.json",
            "--out",
            tmp_path / "m.csv",
            "--k",
            "4",
        ]
    )
    flagged = np.mean([r[-1] == "true" for r in read_csv(tmp_path / "m.csv")[1]])
    assert code == 0 and 0.04 <= flagged <= 0.06  # the rate it was fitted for, on the images it was fitted on


def test_bad_input_one_line(model, tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "a.png")
    (tmp_path / "imgs" / "b.png").write_text("not a png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "big.png")
    (tmp_path / "size").mkdir()
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "size" / "big.png")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "a-file").write_text("x")
    cases = [
        ([tmp_path / "imgs"], InputError, "b.png: expected a readable PNG/JPEG image, got an unreadable file"),
        ([tmp_path / "size"], InputError, "big.png: expected a 8x8 image for this model, got 8x9"),
        ([tmp_path / "wrong.npy"], InputError, r"wrong.npy: expected images [N,1,8,8] (or [N,8,8] for one channel)"),
        ([tmp_path / "nothing"], InputError, "nothing: expected a folder of images, an image file, an .npy file or an IDX file"),
        ([], InputError, "expected INPUT to score or --fit NORMAL_INPUT"),
        ([tmp_path / "wrong.npy", "--fit", tmp_path / "wrong.npy"], InputError, "one of the two"),
        ([tmp_path / "wrong.npy", "--calibration", tmp_path / "a-file"], InputError, "expected a calibration JSON"),
    ]
    for args, error, message in cases:
        code, _, stderr = run([model, *args, "--out", tmp_path / "out.csv", "--quiet"])
        assert code == error.exit_code and message in stderr and stderr.count("\n") == 1, (args, stderr)
    np.save(tmp_path / "ok.npy", np.zeros((2, 8, 8), np.uint8))
    code, _, stderr = run([model, tmp_path / "ok.npy", "--out", tmp_path / "a-file" / "s.csv", "--quiet"])
    assert code == FileAccessError.exit_code and "a-file/s.csv" in stderr
    assert not (tmp_path / "out.csv").exists()
