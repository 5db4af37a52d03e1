import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vaeport.export.pipeline import ExportOptions, export_run
from vaeport.runtime.errors import InputError
from vaeport.train import plots
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


class KnownCodes:
    """A model whose posteriors are given: dimension 2 carries the most KL, 0 some, 1 none."""

    latent_dim, image_shape, variational = 3, (1, 4, 4), True

    def __init__(self, prior_name: str = "normal") -> None:
        self.prior = type("Prior", (), {"name": prior_name})()
        rng = np.random.default_rng(0)
        self.mean = np.stack([0.5 * rng.standard_normal(200), np.zeros(200), 2.0 * rng.standard_normal(200)], 1)
        self.decoded: list[np.ndarray] = []

    def encode(self, x):
        return self.mean[: len(x)].astype(np.float32), np.full((len(x), 3), -1.0, dtype=np.float32)

    def decode(self, z):
        self.decoded.append(np.asarray(z))
        return np.full((len(z), 1, 4, 4), 0.5, dtype=np.float32)


def test_latent_order_puts_the_most_informative_active_dimension_first():
    images = np.zeros((200, 1, 4, 4), dtype=np.float32)
    order = plots.latent_order(KnownCodes(), images)
    assert [d for d, _, _ in order] == [2, 0]  # dimension 1 is inactive
    assert order[0][1] > order[1][1] > 0
    learned = plots.latent_order(KnownCodes("flow"), images)
    assert [d for d, _, _ in learned] == [2, 0] and np.isnan(learned[0][1])


def test_traversals_sweep_one_dimension_at_a_time():
    model = KnownCodes()
    images = np.zeros((200, 1, 4, 4), dtype=np.float32)
    plots.traversals(model, images, base=5, steps=7)
    first, second = model.decoded
    assert np.allclose(first[:, 2], np.linspace(-3, 3, 7)) and np.allclose(first[:, [0, 1]], model.mean[5, [0, 1]])
    assert np.allclose(second[:, 0], np.linspace(-3, 3, 7)) and np.allclose(second[:, [1, 2]], model.mean[5, [1, 2]])
    with pytest.raises(InputError, match="expected a base image index in 0..199, got 200"):
        plots.traversals(model, images, base=200)


def test_vae_plot_traverse_writes_the_picture(folders, tmp_path):
    result = CliRunner().invoke(plot_main, [str(folders["vae-model"]), "--traverse", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "traversals.png").size[0] > 300
    assert Image.open(tmp_path / "latent_correlation.png").size[0] > 300
    bad = CliRunner().invoke(
        plot_main,
        [str(folders["vae"]), "--traverse", "--base-image", "9999", "--points", "10", "--out", str(tmp_path / "bad")],
    )
    assert bad.exit_code == 2 and "--base-image: expected an index in 0..15" in bad.output
