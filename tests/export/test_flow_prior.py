"""The learned flow prior (--prior flow), end to end: the flow is exact (inverse, log-determinant),
trains with the model, exports as two more graphs behind the parity gate, and the runtime samples,
scores and evaluates through them; a folder whose prior graphs disagree is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vaeport.export import export
from vaeport.runtime import VAE, InputError, ModelFolderError
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.flow import FlowPrior

from ..helpers import make_run


def random_flow(dim: int = 6, layers: int = 4, hidden: int = 16) -> FlowPrior:
    torch.manual_seed(0)
    flow = FlowPrior(dim, layers, hidden)
    for coupling in flow.couplings:  # not the identity it starts as
        torch.nn.init.normal_(coupling.net[-1].weight, std=0.3)
    return flow.double()


def test_the_flow_is_exact_invertible_and_its_log_det_is_the_jacobians():
    flow = random_flow()
    eps = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z, log_det = flow.forward_with_log_det(eps)
    for coupling in reversed(flow.couplings):
        z, _ = coupling.inverse(z)
    torch.testing.assert_close(z, eps)
    jacobian = torch.autograd.functional.jacobian(flow.sample, eps[0])
    torch.testing.assert_close(torch.linalg.slogdet(jacobian)[1], log_det[0])
    z = flow.sample(eps)
    log_normal = -0.5 * (eps.pow(2) + np.log(2 * np.pi)).sum(-1)
    torch.testing.assert_close(flow.log_prob(z), log_normal - log_det)


def test_a_new_flow_is_the_standard_normal():
    flow = FlowPrior(4, 3, 8)
    eps = torch.randn(7, 4)
    torch.testing.assert_close(flow.sample(eps), eps)
    torch.testing.assert_close(flow.log_prob(eps), -0.5 * (eps.pow(2) + np.log(2 * np.pi)).sum(-1))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"prior": "vamp"}, "expected --prior to be one of normal, flow, got 'vamp'"),
        ({"prior": "flow", "kind": "ae"}, "expected --prior normal with --model ae"),
        ({"prior": "flow", "flow_layers": 0}, "expected --flow-layers >= 1, got 0"),
        ({"prior": "flow", "flow_hidden": 10**6}, "expected --flow-hidden <= 4096"),
    ],
)
def test_bad_prior_settings_are_refused_before_anything_is_written(tmp_path, settings, message):
    with pytest.raises(InputError, match=message):
        fit(TrainConfig(**settings), tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def flow_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    run = make_run(root / "run", hidden=(32,), latent_dim=4, epochs=3, prior="flow", flow_layers=4, flow_hidden=16,
                   objective="iwae", samples=2)  # fmt: skip
    return run, export(run, root / "model", fp16=True)


def test_a_flow_model_exports_its_prior_graphs_behind_the_gate(flow_model):
    _, model = flow_model
    manifest = json.loads((model / "vae.json").read_text())
    assert manifest["format_version"] == 3 and manifest["model"]["prior"] == "flow"
    assert manifest["graphs"]["fp32"] == {
        role: f"{role}.onnx" for role in ("encoder", "decoder", "prior_sample", "prior_log_prob", "prior_inverse")
    }
    checks = manifest["parity"]["fp32"]["checks"]
    assert {c["graph"] for c in checks} >= {"prior_sample", "prior_log_prob", "prior_sample+prior_log_prob"}
    assert all(c["passed"] for c in checks) and manifest["parity"]["fp16"]["passed"]
    assert manifest["model"]["architecture"]["prior"] == {"layers": 4, "hidden": 16}


def test_the_runtime_samples_and_scores_through_the_learned_prior(flow_model):
    run, model = flow_model
    vae = VAE.load(model)
    assert vae.prior.name == "flow"
    eps = vae.prior.noise(3, 0, 5)
    from vaeport.train.load import load_run

    torch_model, _, _ = load_run(run, "last")
    with torch.no_grad():
        want = torch_model.prior.sample(torch.from_numpy(eps)).numpy()
    np.testing.assert_allclose(vae.sample_latent(5, seed=3), want, rtol=1e-4, atol=1e-5)
    assert not np.allclose(vae.sample_latent(5, seed=3), eps)  # the flow, not N(0, I)
    np.testing.assert_array_equal(vae.sample_latent(2, seed=3, start=3), vae.sample_latent(5, seed=3)[3:])
    torch_report, onnx_report = evaluate(run, k=8, checkpoint="last"), evaluate(model, k=8)
    for key in ("test_iwae_nll", "test_neg_elbo", "test_kl"):
        assert onnx_report[key] == pytest.approx(torch_report[key], rel=1e-4), key
    assert "kl_per_dim" not in onnx_report  # a learned prior's KL does not split by dimension
    images = vae.sample(6, seed=0)
    with pytest.warns(UserWarning):  # no calibration in this folder
        scores = vae.score(images, k=8)
    assert np.isfinite(scores["nll"]).all() and np.isfinite(scores["kl"]).all()
    z = vae.sample_latent(2, seed=1)
    np.testing.assert_allclose(vae.prior.inverse(z), vae.prior.noise(1, 0, 2), rtol=1e-4, atol=1e-4)
    ends = vae.interpolate(z[0], z[1], steps=5)
    np.testing.assert_allclose(ends[[0, -1]], vae.decode(z), atol=1e-4)  # the path ends at the latents


def test_a_folder_whose_prior_graphs_disagree_is_refused(flow_model, tmp_path):
    """prior_log_prob replaced by another flow's (hashes updated, as a careful hand edit would)."""
    from vaeport.runtime.hashing import sha256_bytes

    _, model = flow_model
    other_run = make_run(tmp_path / "other", hidden=(32,), latent_dim=4, epochs=2, prior="flow", flow_layers=2,
                         flow_hidden=8, seed=5)  # fmt: skip
    other = export(other_run, tmp_path / "other-model")
    edited = tmp_path / "edited"
    shutil.copytree(model, edited)
    graph = (other / "prior_log_prob.onnx").read_bytes()
    (edited / "prior_log_prob.onnx").write_bytes(graph)
    manifest = json.loads((edited / "vae.json").read_text())
    manifest["files"]["prior_log_prob.onnx"]["sha256"] = sha256_bytes(graph)
    manifest["files"]["prior_log_prob.onnx"]["bytes"] = len(graph)
    (edited / "vae.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="prior_sample.onnx, prior_log_prob.onnx to be one flow"):
        VAE.load(edited, variant="fp32")


def test_a_version_2_folder_cannot_claim_a_learned_prior(flow_model, tmp_path):
    _, model = flow_model
    edited = tmp_path / "v2"
    shutil.copytree(model, edited)
    manifest = json.loads((edited / "vae.json").read_text())
    manifest["format_version"] = 2
    (edited / "vae.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="expected format_version 3 for the flow prior's graphs"):
        VAE.load(edited)


def test_the_legacy_target_rewrites_the_prior_graphs_too(flow_model, tmp_path):
    run, _ = flow_model
    folder = export(run, tmp_path / "legacy", target="legacy")
    manifest = json.loads((folder / "vae.json").read_text())
    assert manifest["opset"] == 13 and manifest["parity"]["fp32"]["passed"]
    assert VAE.load(folder).sample(2, seed=0).shape == (2, 1, 8, 8)
