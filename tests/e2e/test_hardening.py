"""Wrong answers and lost files at the edges (the Hardening II issue): one test per item, each of
which failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vaeport.export import export
from vaeport.runtime import VAE, InputError, ModelFolderError
from vaeport.runtime.image_files import image_batches, read_image
from vaeport.train import TrainConfig, fit
from vaeport.train.datasets import load_dataset

from ..helpers import make_run


def garment(side: int = 28) -> np.ndarray:
    """A gray garment-like image with every level 0..255 in it, uint8 [side, side]."""
    y, x = np.mgrid[0:side, 0:side]
    return ((x * 7 + y * 3) % 256).astype(np.uint8)


# -- 1. 16-bit PNGs ---------------------------------------------------------------------------------
def test_a_16_bit_png_reads_as_its_8_bit_copy(tmp_path):
    from PIL import Image

    image = garment()
    Image.fromarray(image).save(tmp_path / "8.png")
    Image.fromarray(image.astype(np.uint16) * 257).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    eight, gray8 = read_image(tmp_path / "8.png")
    sixteen, gray16 = read_image(tmp_path / "16.png")
    assert gray8 and gray16
    np.testing.assert_array_equal(sixteen, eight)  # not clipped to 0 and 255
    assert len(np.unique(sixteen)) > 200


def test_vae_score_and_folder_training_see_16_bit_pngs_as_their_8_bit_copies(tmp_path):
    from PIL import Image

    for depth in ("8", "16"):
        for c, name in enumerate(("a", "b")):
            (tmp_path / depth / name).mkdir(parents=True)
            for i in range(6):
                image = np.roll(garment(), 3 * i + 20 * c, axis=1)
                pixels = image if depth == "8" else image.astype(np.uint16) * 257
                Image.fromarray(pixels).save(tmp_path / depth / name / f"{i}.png")
    batches = {d: next(image_batches(tmp_path / d, (1, 28, 28))[1])[1] for d in ("8", "16")}
    np.testing.assert_array_equal(batches["16"], batches["8"])
    data = {d: load_dataset(f"folder:{tmp_path / d}", seed=0) for d in ("8", "16")}
    np.testing.assert_array_equal(data["16"].train, data["8"].train)


# -- 2. --force keeps what vaeport did not write ----------------------------------------------------
def test_fit_force_keeps_the_users_files(tmp_path, capsys):
    config = TrainConfig(hidden=(16,), latent_dim=2, epochs=1, threads=1)
    run = tmp_path / "r"
    fit(config, run, quiet=True)
    (run / "notes.md").write_text("my notes")
    (run / "plots").mkdir()
    (run / "plots" / "a.png").write_bytes(b"png")
    (run / "eval.json").write_text("{}")
    fit(config.replace(seed=1), run, force=True)
    assert (run / "notes.md").read_text() == "my notes" and (run / "plots" / "a.png").read_bytes() == b"png"
    assert (run / "eval.json").exists()
    assert "kept what training did not write: eval.json, notes.md, plots/" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["seed"] == 1


def test_export_force_keeps_the_users_files(tmp_path):
    run = make_run(tmp_path / "run", hidden=(16,), latent_dim=2)
    model = export(run, tmp_path / "m")
    (model / "MODEL_CARD.md").write_text("# mine")
    (model / "eval.json").write_text('{"onnx": {}}')
    (model / "extra").mkdir()
    (model / "extra" / "notes.txt").write_text("keep")
    messages = []
    export(run, model, force=True, fp16=True, log=messages.append)
    assert (model / "MODEL_CARD.md").read_text() == "# mine" and (model / "eval.json").exists()
    assert (model / "extra" / "notes.txt").read_text() == "keep"
    assert "kept what vae-export did not write: MODEL_CARD.md, eval.json, extra/" in messages
    assert VAE.load(model, variant="fp16").variant == "fp16"  # the new folder, whole


def test_export_force_still_replaces_its_own_graphs(tmp_path):
    """Graphs of the earlier export (an fp16 variant not asked for again) do not survive as strays."""
    run = make_run(tmp_path / "run", hidden=(16,), latent_dim=2)
    model = export(run, tmp_path / "m", fp16=True)
    export(run, model, force=True)
    assert sorted(p.name for p in model.iterdir()) == ["decoder.onnx", "encoder.onnx", "vae.json"]
    with pytest.raises(ModelFolderError, match="expected variant 'fp16' to be one of fp32"):
        VAE.load(model, variant="fp16")


# -- 3-6. calibrations ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Two VAEs on digits trained with different seeds (each with its own calibration from 500
    held-out images), and a plain autoencoder."""
    root = tmp_path_factory.mktemp("calibrated")
    folders = {}
    for name, settings in (("a", {"seed": 1}), ("b", {"seed": 2}), ("ae", {"seed": 1, "kind": "ae"})):
        config = TrainConfig(hidden=(32,), latent_dim=4, epochs=3, holdout=500, threads=1, **settings)
        folders[name] = export(fit(config, root / f"run-{name}", quiet=True), root / name)
    return folders


def score_cli(args):
    from click.testing import CliRunner

    from vaeport.runtime.score_cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_a_calibration_records_its_model_and_another_models_is_refused(calibrated, tmp_path):
    """3: one fitted on model b (same shapes, other weights) or on a VAE for the AE is refused,
    naming what differs; the folder's own records its model."""
    images = load_dataset("digits", seed=0).test[:8]
    a, b, ae = (VAE.load(calibrated[n]) for n in ("a", "b", "ae"))
    assert a.calibration.model["graphs_sha256"]["encoder"] == a.manifest.file_spec("encoder.onnx")["sha256"]
    with pytest.raises(InputError, match="fitted for another \\(graphs_sha256"):
        a.score(images, calibration=b.calibration)
    with pytest.raises(InputError, match="fitted for another \\(kind: 'vae', this model: 'ae'\\)"):
        ae.score(images, calibration=a.calibration)
    (tmp_path / "b.json").write_text(json.dumps(b.calibration.to_dict()))
    np.save(tmp_path / "x.npy", images)
    code, output = score_cli([calibrated["a"], tmp_path / "x.npy", "--calibration", tmp_path / "b.json",
                              "--out", tmp_path / "s.csv"])  # fmt: skip
    assert code == 2 and "fitted for another (graphs_sha256" in output and not (tmp_path / "s.csv").exists()
    assert np.isfinite(a.score(images, calibration=a.calibration)["anomaly"]).all()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c.update(threshold=float("nan")), "'threshold' nan"),
        (lambda c: c["center"].__setitem__(0, float("nan")), "'center' that is not 9 finite numbers"),
        (lambda c: c.pop("threshold"), "without the field 'threshold'"),
        (lambda c: c.update(k=0), "'k' 0"),
    ],
)
def test_a_damaged_calibration_file_names_the_field_and_exits_2(calibrated, tmp_path, edit, field):
    """4: NaN or a missing key in a hand-edited file is refused naming the field, as bad input (2),
    not as a broken model folder (3)."""
    record = VAE.load(calibrated["a"]).calibration.to_dict()
    edit(record)
    (tmp_path / "cal.json").write_text(json.dumps(record))
    np.save(tmp_path / "x.npy", load_dataset("digits", seed=0).test[:4])
    code, output = score_cli([calibrated["a"], tmp_path / "x.npy", "--calibration", tmp_path / "cal.json",
                              "--out", tmp_path / "s.csv"])  # fmt: skip
    assert code == 2 and field in output, output


def test_scoring_at_another_k_than_the_calibration_is_refused_or_unflagged(calibrated, tmp_path):
    """5: the CLI refuses --k other than the calibration's, naming the k it needs; the API leaves
    flagged unknown and warns, naming it."""
    from vaeport.runtime.scoring import NoCalibrationWarning

    images = load_dataset("digits", seed=0).test[:8]
    np.save(tmp_path / "x.npy", images)
    code, output = score_cli([calibrated["a"], tmp_path / "x.npy", "--k", "1", "--out", tmp_path / "s.csv"])
    assert code == 2 and "expected --k 64" in output
    vae = VAE.load(calibrated["a"])
    with pytest.warns(NoCalibrationWarning, match="fitted at k=64, not k=1: score with k=64"):
        s = vae.score(images, k=1)
    assert s["flagged"] is None and np.isnan(s["anomaly"]).all()
    with pytest.raises(InputError, match="expected k=64"):
        vae.score(images, k=1, calibration=vae.calibration)


def test_no_calibration_leaves_flagged_unknown_and_warns(tmp_path):
    """6: an all-white image is not 'not flagged' when nothing can flag it."""
    from vaeport.runtime.scoring import NoCalibrationWarning

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=2), tmp_path / "m")
    vae = VAE.load(model)
    assert vae.calibration is None
    with pytest.warns(NoCalibrationWarning, match="the model folder has none"):
        s = vae.score(np.ones((1, 1, 8, 8), dtype=np.float32))
    assert s["flagged"] is None
