"""Wrong answers and lost files at the edges (the Hardening II issue): one test per item, each of
which failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

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


# -- 7, 14. classes from folders and sidecar files -------------------------------------------------
def write_class_folders(root: Path, names, per_class: int = 6, side: int = 8) -> Path:
    from PIL import Image

    for c, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = np.zeros((side, side), dtype=np.uint8)
            image[c % side, :] = 255
            image[:, i % side] = 128
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def test_numeric_class_folders_are_in_numeric_order(tmp_path):
    """7: folders 1..10 are classes 1..10 in that order, not 1, 10, 2, ..."""
    data = load_dataset(f"folder:{write_class_folders(tmp_path / 'd', [str(i) for i in range(1, 11)])}", seed=0)
    assert data.classes == tuple(str(i) for i in range(1, 11))


def test_a_number_that_is_one_class_by_index_and_another_by_name_is_refused(tmp_path):
    """7: `--label 1` and `label=1` may not draw two different classes: where the number is both
    the name of one class and the index of another, both refuse it and say how to say which."""
    from vaeport.runtime.labels import as_labels, resolve_label_option

    classes = tuple(str(i) for i in range(1, 11))
    with pytest.raises(InputError, match="1 is the index of class '2' and the name of class index 0"):
        as_labels(1, 1, classes)
    with pytest.raises(InputError, match="say --label name:1 or --label index:1"):
        resolve_label_option("1", False, classes)
    assert as_labels("1", 1, classes)[0] == resolve_label_option("name:1", False, classes) == 0
    assert resolve_label_option("index:1", False, classes) == 1 == as_labels("2", 1, classes)[0]
    assert as_labels(10, 1, tuple(str(i) for i in range(11)))[0] == 10  # names equal to indices: no doubt
    with pytest.raises(InputError, match="index:N with N in 0..9"):
        resolve_label_option("index:10", False, classes)


def test_hidden_files_are_not_images_and_a_stray_image_is_named(tmp_path):
    """14: macOS `._*.png` metadata is skipped; a top-level image beside class folders is named
    (and a conditional run refuses it) instead of silently turning the labels off."""
    root = write_class_folders(tmp_path / "d", ["a", "b"])
    (root / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07 not a png")
    assert len(load_dataset(f"folder:{root}", seed=0).train) + len(load_dataset(f"folder:{root}", seed=0).test) == 12
    (root / "stray.png").write_bytes((root / "a" / "0.png").read_bytes())
    with pytest.raises(InputError, match="got 1 at the top level \\(stray.png\\)"):
        load_dataset(f"folder:{root}", seed=0)
    lenient = load_dataset(f"folder:{root}", seed=0, strict_labels=False)
    assert lenient.classes is None and "stray.png" in lenient.notes[0]
    config = TrainConfig(dataset=f"folder:{root}", hidden=(8,), latent_dim=2, epochs=1, batch_size=4, threads=1)
    with pytest.raises(InputError, match="stray.png"):
        fit(config.replace(conditional=True), tmp_path / "c")
    assert not (tmp_path / "c").exists()
    fit(config, tmp_path / "u", quiet=True)  # an unconditional run goes on without labels
    assert "stray.png" in json.loads((tmp_path / "u" / "config.json").read_text())["data"]["label_notes"][0]


def test_an_empty_class_or_a_label_gap_is_refused_for_a_conditional_run(tmp_path):
    """14: an empty class folder stays a class (K does not change behind the user's back), and a
    conditional run refuses a class it has no training images of, as it does a gap in npy labels."""
    root = write_class_folders(tmp_path / "d", ["a", "b"])
    (root / "c").mkdir()
    assert load_dataset(f"folder:{root}", seed=0).classes == ("a", "b", "c")
    config = TrainConfig(dataset=f"folder:{root}", hidden=(8,), latent_dim=2, epochs=1, batch_size=4, threads=1)
    with pytest.raises(InputError, match="got none of 'c' \\(index 2\\)"):
        fit(config.replace(conditional=True), tmp_path / "r")
    images = np.zeros((20, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "x.labels.npy", np.array([0, 2] * 10))
    gap = TrainConfig(dataset=f"npy:{tmp_path / 'x.npy'}", hidden=(8,), latent_dim=2, epochs=1, batch_size=4,
                      threads=1, conditional=True)  # fmt: skip
    with pytest.raises(InputError, match="got none of '1' \\(index 1\\)"):
        fit(gap, tmp_path / "g")
    assert not (tmp_path / "r").exists() and not (tmp_path / "g").exists()


def test_a_blank_line_in_classes_txt_is_refused_not_shifted(tmp_path):
    """14: a blank line would shift every later name onto the wrong class."""
    np.save(tmp_path / "x.npy", np.zeros((20, 8, 8), dtype=np.uint8))
    np.save(tmp_path / "x.labels.npy", np.arange(20) % 3)
    (tmp_path / "x.classes.txt").write_text("cat\n\ndog\nbird\n\n")
    with pytest.raises(InputError, match="blank line 2"):
        load_dataset(f"npy:{tmp_path / 'x.npy'}", seed=0)
    (tmp_path / "x.classes.txt").write_text("cat\ndog\nbird\n\n")  # trailing blank lines shift nothing
    assert load_dataset(f"npy:{tmp_path / 'x.npy'}", seed=0).classes == ("cat", "dog", "bird")


# -- 10. text labels --------------------------------------------------------------------------------
def test_text_labels_are_refused_in_one_line_and_do_not_break_unconditional_training(tmp_path):
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((40, 8, 8)) * 255).astype(np.uint8))
    np.save(tmp_path / "x.labels.npy", np.array(["cat", "dog"] * 20))
    config = TrainConfig(dataset=f"npy:{tmp_path / 'x.npy'}", hidden=(8,), latent_dim=2, epochs=1, batch_size=8,
                         threads=1)  # fmt: skip
    with pytest.raises(InputError, match="expected integer class indices 0..K-1 .* got <U3 values"):
        fit(config.replace(conditional=True), tmp_path / "c")
    run = fit(config, tmp_path / "u", quiet=True)
    assert len(run.metrics) == 1


# -- 8. resume with fewer epochs --------------------------------------------------------------------
def test_resume_with_fewer_epochs_is_refused_and_the_record_stays_true(tmp_path):
    config = TrainConfig(hidden=(8,), latent_dim=2, epochs=3, threads=1)
    fit(config, tmp_path / "r", quiet=True)
    before = (tmp_path / "r" / "config.json").read_bytes()
    with pytest.raises(InputError, match="expected --epochs \\(TrainConfig.epochs\\) of at least 3 .* got 1"):
        fit(config.replace(epochs=1), tmp_path / "r", resume=True, quiet=True)
    assert (tmp_path / "r" / "config.json").read_bytes() == before
    from click.testing import CliRunner

    from vaeport.train.cli import main

    result = CliRunner().invoke(main, ["--out", str(tmp_path / "r"), "--resume", "--epochs", "1"])
    assert result.exit_code == 2 and "of at least 3" in result.output
    assert (tmp_path / "r" / "config.json").read_bytes() == before


# -- 11. a run trained with --skip-bad-images can be evaluated --------------------------------------
def test_a_run_trained_skipping_bad_images_evaluates_on_both_paths(tmp_path):
    from click.testing import CliRunner

    from vaeport.train.eval_cli import main as eval_main

    root = write_class_folders(tmp_path / "d", ["a", "b"], per_class=10)
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    config = TrainConfig(dataset=f"folder:{root}", hidden=(8,), latent_dim=2, epochs=1, batch_size=4, threads=1,
                         skip_bad_images=True)  # fmt: skip
    run = fit(config, tmp_path / "r", quiet=True)
    model = export(run, tmp_path / "m")
    for target in (run.path, model):
        args = [str(target), "--k", "2", "--out", str(tmp_path / f"{target.name}.json")]
        if target == model:
            args += ["--dataset", f"folder:{root}"]
        result = CliRunner().invoke(eval_main, args)
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(eval_main, [str(run.path), "--no-skip-bad-images", "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "broken.png" in result.output


# -- 18. Interrupted is a KeyboardInterrupt -------------------------------------------------------
def test_interrupted_is_caught_by_except_keyboard_interrupt(tmp_path):
    from vaeport.runtime import Interrupted

    config = TrainConfig(hidden=(8,), latent_dim=2, epochs=2, threads=1)

    def stop_after_first_epoch(row):
        raise Interrupted(f"interrupted after epoch {row['epoch']}")

    with pytest.raises(KeyboardInterrupt) as caught:
        fit(config, tmp_path / "r", quiet=True, on_epoch=stop_after_first_epoch)
    assert isinstance(caught.value, Interrupted) and caught.value.exit_code == 130


# -- 19. --opset 13 points to --target legacy ---------------------------------------------------------
def test_opset_13_points_to_the_legacy_target():
    from vaeport.export import ExportOptions

    with pytest.raises(InputError, match="got 13 \\(opset 13 is --target legacy\\)"):
        ExportOptions(opset=13)
    assert ExportOptions(opset=13, target="legacy").opset == 13  # says what the target is: accepted
    with pytest.raises(InputError, match="expected --opset only with --target portable"):
        ExportOptions(opset=18, target="legacy")


# -- 20. silently accepted settings, spreadsheet formulas ------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hidden": "512,,256"}, "an empty size in '512,,256'"),
        ({"samples": 4}, "expected --samples only with --objective iwae or iwae-dreg"),
    ],
)
def test_settings_that_were_silently_accepted_are_refused(settings, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**settings)


def test_a_saved_elbo_run_with_samples_still_loads():
    assert TrainConfig.from_dict({"objective": "elbo", "samples": 4}).samples == 1


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "tab\there"])
def test_a_model_name_is_not_a_path(name):
    from vaeport.export import ExportOptions

    with pytest.raises(InputError, match="expected --name to be a printable name without path separators"):
        ExportOptions(name=name)


def test_csv_text_cells_cannot_run_as_spreadsheet_formulas(tmp_path):
    from PIL import Image

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=2), tmp_path / "m")
    (tmp_path / "in").mkdir()
    for name in ("=HYPERLINK(x).png", "+1.png", "-2.png", "@a.png", "plain.png"):
        Image.fromarray(garment(8)).save(tmp_path / "in" / name)
    code, output = score_cli([model, tmp_path / "in", "--k", "2", "--out", tmp_path / "s.csv", "--quiet"])
    assert code == 0, output
    import csv

    rows = list(csv.reader((tmp_path / "s.csv").open()))[1:]
    assert sorted(r[0] for r in rows) == ["'+1.png", "'-2.png", "'=HYPERLINK(x).png", "'@a.png", "plain.png"]
    assert all(float(r[1]) > 0 for r in rows)  # numbers (negative ones too) stay numbers


# -- 21. an autoencoder has no ELBO -------------------------------------------------------------------
def test_an_autoencoders_summary_names_its_reconstruction_not_an_elbo(tmp_path):
    from click.testing import CliRunner

    from vaeport.train.cli import main

    result = CliRunner().invoke(main, ["--model", "ae", "--hidden", "8", "--latent-dim", "2", "--epochs", "1",
                                       "--threads", "1", "--out", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test reconstruction NLL" in result.output and "ELBO" not in result.output


# -- 12, 16. bounded k, progress, --out checked first ----------------------------------------------
def test_k_is_bounded_and_named_everywhere(tmp_path):
    from vaeport.runtime.evaluate import MAX_K
    from vaeport.train import evaluate

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=2), tmp_path / "m")
    images = load_dataset("digits", seed=0).test[:2]
    with pytest.raises(InputError, match=f"integer 1..{MAX_K}, got 1000000000000"):
        VAE.load(model).score(images, k=10**12)
    with pytest.raises(InputError, match=f"integer 0..{MAX_K}, got 100000"):
        evaluate(model, k=100_000)
    np.save(tmp_path / "x.npy", images)
    code, output = score_cli([model, tmp_path / "x.npy", "--k", "100000", "--out", tmp_path / "s.csv"])
    assert code == 2 and f"100000 is not in the range 1<=x<={MAX_K}" in output


def test_vae_score_and_vae_eval_check_out_before_the_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vaeport.runtime import scoring
    from vaeport.train.eval_cli import main as eval_main

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=2), tmp_path / "m")
    np.save(tmp_path / "x.npy", load_dataset("digits", seed=0).test[:2])
    (tmp_path / "folder.csv").mkdir()

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before checking --out")

    monkeypatch.setattr(scoring, "score", no_scoring)
    code, output = score_cli([model, tmp_path / "x.npy", "--out", tmp_path / "folder.csv"])
    assert code == 6 and "expected a file path, got an existing folder" in output
    result = CliRunner().invoke(eval_main, [str(model), "--out", str(tmp_path / "folder.csv")])
    assert result.exit_code == 6 and "expected a file path, got an existing folder" in result.output


def test_evaluate_reports_progress(tmp_path):
    from vaeport.train import evaluate

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=2), tmp_path / "m")
    seen = []
    evaluate(model, k=2, progress=lambda done, total: seen.append((done, total)))
    assert seen and sum(d for d, _ in seen) == seen[0][1] == len(load_dataset("digits", seed=0).test)


# -- 17. vae-score: one bad file, another size, one image file ------------------------------------------
def test_vae_score_skips_or_resizes_where_asked_and_scores_one_file(tmp_path):
    from PIL import Image

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=2), tmp_path / "m")
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(garment(8)).save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    Image.fromarray(garment(16)).save(folder / "big.png")
    code, output = score_cli([model, folder, "--k", "2", "--out", tmp_path / "a.csv"])
    assert code == 2 and "bad.png" in output and "--skip-bad-images" in output
    code, output = score_cli([model, folder, "--k", "2", "--skip-bad-images", "--out", tmp_path / "b.csv"])
    assert code == 0 and "skipped 2 file(s): bad.png" in output
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 1 + 3
    (folder / "bad.png").unlink()
    code, output = score_cli([model, folder, "--k", "2", "--resize", "--out", tmp_path / "c.csv"])
    assert code == 0 and len((tmp_path / "c.csv").read_text().splitlines()) == 1 + 4
    code, output = score_cli([model, folder / "0.png", "--k", "2", "--out", tmp_path / "d.csv"])
    assert code == 0 and (tmp_path / "d.csv").read_text().splitlines()[1].startswith("0.png,")


# -- 13, 15. the Python API: validated before work, numpy numbers, names for notebooks -------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda out: fit({"epochs": 1}, out), "expected config to be a TrainConfig .* got dict: build one"),
        (lambda out: fit(TrainConfig(epochs=1), None), "expected out to be a run folder path .* got None"),
        (lambda out: fit(TrainConfig(epochs=1), out, on_epoch=5), "expected on_epoch to be a function"),
        (lambda out: export(None, out), "expected a run folder and an out folder path"),
    ],
)
def test_python_api_arguments_are_checked_before_any_work(tmp_path, call, message):
    with pytest.raises(InputError, match=message):
        call(tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_numpy_numbers_are_settings_and_errors_name_the_python_field():
    config = TrainConfig(latent_dim=np.int64(8), lr=np.float32(1e-3), epochs=np.int32(2))
    assert config.latent_dim == 8 and type(config.latent_dim) is int and type(config.lr) is float
    assert json.dumps(config.to_dict())  # writable into config.json
    with pytest.raises(InputError, match="expected --latent-dim >= 1, got 0 \\(TrainConfig.latent_dim\\)"):
        TrainConfig(latent_dim=0)
