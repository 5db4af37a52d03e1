import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from vaeport.export.pipeline import ExportOptions, export_run
from vaeport.train.plot_cli import main as plot_main

from ..conftest import write_idx_set
from ..helpers import make_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    vae = make_run(root / "vae", arch="conv", hidden=(8, 16), latent_dim=4, epochs=2)
    ae = make_run(root / "ae", arch="conv", kind="ae", hidden=(8, 16), latent_dim=4)
    flat = make_run(root / "flat", arch="mlp", hidden=(32,), latent_dim=2)
    export_run(vae, root / "vae-model", ExportOptions(), log=lambda _: None)
    return {"vae": vae, "ae": ae, "flat": flat, "vae-model": root / "vae-model"}


@pytest.mark.parametrize("source", ["vae", "vae-model"])
def test_vae_plot_writes_every_picture(folders, tmp_path, source):
    out = tmp_path / "pics"
    result = CliRunner().invoke(
        plot_main,
        [
            str(folders[source]),
            "--compare",
            str(folders["ae"]),
            "--manifold",
            str(folders["flat"]),
            "--out",
            str(out),
            "--points",
            "150",
        ],
    )
    assert result.exit_code == 0, result.stderr
    expected = {
        "latent_spaces.png",
        "random_decodes.png",
        "reconstructions.png",
        "interpolations.png",
        "training_curves.png",
        "manifold.png",
    }
    assert {p.name for p in out.iterdir()} == expected
    for name in expected:
        with Image.open(out / name) as image:
            width, height = image.size
        assert width >= 200 and height >= 150, name
        assert (out / name).stat().st_size > 5000, name


@pytest.mark.parametrize("source", ["run", "model"])
def test_class_grid_of_a_conditional_model(cvae_run, cvae_model, folders, tmp_path, source):
    """conditional.png: one row per latent, one column per class, from a run or a model folder."""
    conditional = cvae_run if source == "run" else cvae_model
    args = [str(folders["vae"]), "--conditional", str(conditional), "--out", str(tmp_path), "--points", "150"]
    result = CliRunner().invoke(plot_main, args)
    assert result.exit_code == 0, result.stderr
    with Image.open(tmp_path / "conditional.png") as image:
        width, height = image.size
    assert width > height > 300  # ten columns, eight rows


def test_conditional_models_are_refused_where_classes_do_not_fit(cvae_model, folders, tmp_path):
    result = CliRunner().invoke(plot_main, [str(cvae_model), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "expected an unconditional model (draw a conditional one with --conditional)" in (
        result.stderr
    )
    result = CliRunner().invoke(plot_main, [str(folders["vae"]), "--conditional", str(folders["vae"]), "--out", "x"])
    assert result.exit_code == 2 and "--conditional: expected a model with classes" in result.stderr


def test_manifold_needs_a_2d_model(folders, tmp_path):
    result = CliRunner().invoke(
        plot_main, [str(folders["vae"]), "--manifold", str(folders["vae"]), "--out", str(tmp_path)]
    )
    assert result.exit_code != 0 and "latent_dim 2" in result.stderr


def test_shipped_recipe_is_deterministic_on_a_short_run(tmp_path):
    """The shipped recipe on a tiny IDX set for one epoch, once through the API and once through
    vae-train with the flags the model card prints: same seed, same metrics."""
    from vaeport.train import TrainConfig, fit
    from vaeport.train.cli import config_args

    recipe = json.loads((ROOT / "models" / "recipes.json").read_text())["fashion-mnist"]["train"]
    data = write_idx_set(tmp_path / "idx")
    # one epoch, small batches and no hold-out: the tiny stand-in data set has 96 training images
    config = TrainConfig(**{**recipe, "epochs": 1, "batch_size": 32, "threads": 1, "data_dir": str(data), "holdout": 0})
    api = fit(config, tmp_path / "api", quiet=True).metrics[-1]
    cli = tmp_path / "cli"
    subprocess.run(
        [str(Path(sys.executable).parent / "vae-train"), *config_args(config), "--out", str(cli), "--quiet"],
        check=True,
        timeout=300,
    )
    row = json.loads((cli / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("train_loss", "test_neg_elbo", "test_kl"):
        assert api[key] == row[key], key
