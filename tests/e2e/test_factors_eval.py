"""vae-eval --factors on a dSprites model, on the torch and the ONNX path; the latent
independence measures in every evaluation; what --factors refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vaeport.export import export
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.disentanglement import MetricSizes
from vaeport.train.eval_cli import main as eval_main

from ..helpers import make_run

SIZES = MetricSizes(mig_points=2000, variance_points=2000, train_points=500, eval_points=300, batch=32)


@pytest.mark.slow
def test_factor_metrics_agree_between_torch_and_onnx(tmp_path: Path) -> None:
    cfg = TrainConfig(
        dataset="dsprites", image_size=16, epochs=1, batch_size=512, latent_dim=4, hidden=(64,), threads=2
    )
    run = fit(cfg, tmp_path / "run", quiet=True)
    export(run.path, tmp_path / "model")
    torch_side = evaluate(run.path, k=0, factors=True, metric_sizes=SIZES)
    onnx_side = evaluate(tmp_path / "model", k=0, factors=True, metric_sizes=SIZES)
    for key in ("mig", "factor_vae_score", "beta_vae_score"):
        assert 0.0 <= torch_side["disentanglement"][key] <= 1.0
        assert onnx_side["disentanglement"][key] == pytest.approx(torch_side["disentanglement"][key], abs=0.01)
    assert onnx_side["total_correlation"] == pytest.approx(torch_side["total_correlation"], abs=1e-3)
    assert len(onnx_side["latent_correlation"]) == 4
    assert torch_side["disentanglement"]["mig_per_factor"].keys() == {"shape", "scale", "orientation", "pos_x", "pos_y"}


def test_factors_on_a_data_set_without_them_is_refused_and_nothing_written(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    out = tmp_path / "eval.json"
    done = CliRunner().invoke(eval_main, [str(run), "--k", "0", "--factors", "--out", str(out)])
    assert done.exit_code == 2 and not out.exists()
    assert "--factors: expected a model of a data set with ground-truth factors (dsprites), got one of digits" in (
        done.output
    )


def test_every_evaluation_measures_latent_independence(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", latent_dim=3)
    result = evaluate(run, k=0)
    corr = result["latent_correlation"]
    assert len(corr) == 3 and all(corr[i][i] == 1.0 for i in range(3))
    assert 0.0 <= result["mean_abs_correlation"] <= 1.0 and isinstance(result["total_correlation"], float)
    ae = evaluate(make_run(tmp_path / "ae", kind="ae"), k=0)
    assert "total_correlation" not in ae and len(ae["latent_correlation"]) == 4
    saved = json.loads(json.dumps(result))
    assert saved["latent_correlation"] == corr
