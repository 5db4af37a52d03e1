"""--prior-of: a flow prior learned for a VAE already trained, its encoder and decoder frozen."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from click.testing import CliRunner

from vaeport.export import export
from vaeport.runtime import VAE, InputError
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.checkpoint import LAST, load_checkpoint
from vaeport.train.cli import main as train_main

from ..helpers import make_run

SOURCE = dict(hidden=(32,), latent_dim=4, seed=3)  # the source run's data and model options
PRIOR = dict(prior="flow", flow_layers=4, flow_hidden=32)


def posthoc_config(source, **changes) -> TrainConfig:
    settings = dict(dataset="digits", epochs=4, batch_size=64, lr=3e-3, threads=1, **SOURCE, **PRIOR)
    return TrainConfig(**{**settings, "prior_of": str(source), **changes})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("posthoc") / "source", epochs=6, **SOURCE)


@pytest.fixture(scope="module")
def posthoc(source):
    return fit(posthoc_config(source), source.parent / "posthoc", quiet=True).path


def weights(run, prefix: str) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / LAST)["model"]
    return {key: value for key, value in state.items() if key.startswith(prefix)}


def test_only_the_prior_learns(source, posthoc):
    for part in ("encoder.", "decoder."):
        mine, theirs = weights(posthoc, part), weights(source, part)
        assert mine.keys() == theirs.keys() and mine
        for key in mine:
            torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0)
    prior = weights(posthoc, "prior.")
    assert prior and any(value.abs().max() > 0 for key, value in prior.items() if key.endswith("net.4.weight"))


def test_the_fitted_prior_improves_the_bound_on_unseen_images(source, posthoc):
    """The flow starts as N(0, I), so the source's bound is where it starts; fitting it to the
    aggregate posterior of the training images lowers the test bound (IWAE-50, the same seed)."""
    before = evaluate(source, k=50, seed=0)["test_iwae_nll"]
    after = evaluate(posthoc, k=50, seed=0)["test_iwae_nll"]
    assert after < before - 0.05, (before, after)


def test_resuming_keeps_the_autoencoder_frozen(source, posthoc, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(posthoc, copy)
    fit(posthoc_config(source, epochs=5), copy, resume=True, quiet=True)
    torch.testing.assert_close(weights(copy, "encoder."), weights(source, "encoder."), rtol=0, atol=0)
    assert len([line for line in (copy / "metrics.jsonl").read_text().splitlines() if line]) == 5


def test_the_model_folder_names_its_source_run_without_its_path(posthoc, tmp_path):
    model = export(posthoc, tmp_path / "model")
    training = json.loads((model / "vae.json").read_text())["training"]
    assert training["prior_of"] == "source" and str(tmp_path.parent) not in (model / "vae.json").read_text()
    vae = VAE.load(model)
    assert vae.prior.name == "flow" and vae.sample(3, seed=0).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prior": "normal"}, "expected a learned prior (--prior flow) with --prior-of, got --prior normal"),
        ({"objective": "iwae-dreg", "samples": 2}, "expected --objective elbo or iwae with --prior-of, got iwae-dreg"),
        ({"hidden": (16,)}, "expected the run's hidden (32) in the new run too, got 16"),
        ({"latent_dim": 5}, "expected the run's latent_dim (4) in the new run too, got 5"),
        ({"holdout": 500}, "expected --holdout 0 as the run was trained with, got 500"),
    ],
)
def test_a_mismatch_is_refused_before_anything_is_written(source, tmp_path, changes, message):
    with pytest.raises(InputError, match=re.escape(message)):
        fit(posthoc_config(source, **changes), tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()


def test_the_source_run_cannot_be_the_new_runs_folder(source):
    before = (source / LAST).read_bytes()
    with pytest.raises(InputError, match="expected another folder than --out"):
        fit(posthoc_config(source), source, force=True, quiet=True)
    assert (source / LAST).read_bytes() == before


def test_a_folder_without_a_run_is_refused_by_the_cli(tmp_path):
    args = ["--dataset", "digits", "--prior", "flow", "--prior-of", tmp_path / "none", "--out", tmp_path / "r"]
    result = CliRunner().invoke(train_main, [str(a) for a in args])
    assert result.exit_code == 2
    assert f"--prior-of {tmp_path / 'none'}: expected a run folder with last.pt, got no such file" in result.stderr
    assert not (tmp_path / "r").exists()


def test_the_api_docs_form_fits_a_prior_to_a_run(source, tmp_path):
    """docs/api.md: the run's own config with the prior changed is accepted as it is."""
    from vaeport.train import Run

    run = Run(source)
    fitted = fit(run.config.replace(prior="flow", prior_of=str(run.path), epochs=1, kl_warmup_epochs=0.0),
                 tmp_path / "f", quiet=True)  # fmt: skip
    assert fitted.config.prior == "flow" and len(fitted.metrics) == 1
