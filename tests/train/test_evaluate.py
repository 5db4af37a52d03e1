import numpy as np
import pytest
import torch

from vaeport.export import export
from vaeport.runtime import VAE
from vaeport.runtime.evaluate import bernoulli_log_likelihood, evaluate, onnx_backend
from vaeport.train.datasets import load_dataset
from vaeport.train.load import load_run
from vaeport.train.torch_eval import neg_elbo, torch_backend

from ..helpers import make_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    run = make_run(root / "run", arch="conv", hidden=(8, 16), latent_dim=6, epochs=3)
    export(run, root / "model")
    model, _, _ = load_run(run)
    return model, root / "model", load_dataset("digits", seed=0).test


def test_iwae_bound_is_tighter_than_elbo(trained):
    model, _, test = trained
    backend = torch_backend(model)
    r1 = evaluate(backend, test, k=1)
    r50 = evaluate(backend, test, k=50)
    # k=1 is a single-sample ELBO with a Monte Carlo KL in place of the closed form
    assert r1["test_iwae_nll"] == pytest.approx(r1["test_neg_elbo"], rel=0.03)
    assert r50["test_iwae_nll"] < r50["test_neg_elbo"]
    assert r50["test_neg_elbo"] == pytest.approx(r1["test_neg_elbo"], rel=1e-9)  # same first sample
    torch_elbo = neg_elbo(model, torch.from_numpy(test), None, 1000, torch.Generator().manual_seed(0))["neg_elbo"]
    assert r1["test_neg_elbo"] == pytest.approx(torch_elbo, rel=0.03)  # other noise, same estimator


def test_batching_does_not_change_the_numbers(trained):
    model, _, test = trained
    a = evaluate(torch_backend(model), test, k=10, max_decode=30)
    b = evaluate(torch_backend(model), test, k=10, max_decode=100_000)
    assert a["test_iwae_nll"] == pytest.approx(b["test_iwae_nll"], rel=1e-9)


def test_torch_and_onnx_paths_agree(trained):
    model, folder, test = trained
    ours = evaluate(torch_backend(model), test, k=20)
    onnx = evaluate(onnx_backend(VAE.load(folder, device="cpu"), "bernoulli"), test, k=20)
    for key in ("test_neg_elbo", "test_recon", "test_kl", "test_iwae_nll"):
        assert abs(ours[key] - onnx[key]) < 0.01, key
    assert ours["active_units"] == onnx["active_units"]
    assert ours["test_mse"] == pytest.approx(onnx["test_mse"], rel=1e-4)


def test_latent_statistics(trained):
    model, _, test = trained
    result = evaluate(torch_backend(model), test, k=0)
    assert result["latent_dim"] == 6 and 1 <= result["active_units"] <= 6
    assert len(result["kl_per_dim"]) == 6 and all(v >= 0 for v in result["kl_per_dim"])
    assert "test_iwae_nll" not in result


def test_bernoulli_log_likelihood_handles_saturated_probabilities():
    p = np.array([[1.0, 0.0, 0.5]], dtype=np.float32)
    x = np.array([[1.0, 0.0, 1.0]], dtype=np.float32)
    value = bernoulli_log_likelihood(p, x)
    assert np.isfinite(value).all() and value[0] == pytest.approx(np.log(0.5), abs=1e-6)
