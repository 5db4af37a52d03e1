"""A VQ-VAE's export: four graph roles, the gate's sampling checks, causality in torch and ONNX."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from vaeport.export.graphs import export_role
from vaeport.export.parity import Tolerance, vq_sampling_checks
from vaeport.runtime.graph import Graph
from vaeport.train.families import torch_roles
from vaeport.train.load import load_run


def test_the_folder_holds_four_roles_and_records_the_codes(vq_model):
    manifest = json.loads((vq_model / "vae.json").read_text())
    assert manifest["format_version"] == 4
    assert manifest["model"]["kind"] == "vqvae"
    assert manifest["model"]["code_grid"] == [4, 4] and manifest["model"]["codebook_size"] == 16
    assert manifest["model"]["prior_cache"] == [2, 2, 16, 16]  # layers, heads, positions, head_dim
    assert manifest["graphs"]["fp32"] == {r: f"{r}.onnx" for r in ("encoder", "decoder", "prior", "prior_step")}
    specs = {f: manifest["files"][f] for f in ("encoder.onnx", "prior_step.onnx")}
    assert specs["encoder.onnx"]["outputs"] == [{"name": "codes", "shape": ["N", 4, 4], "dtype": "int64"}]
    step_inputs = {i["name"]: i["shape"] for i in specs["prior_step.onnx"]["inputs"]}
    buffers = {f"past_{kind}_{layer}": ["N", 2, 16, 16] for layer in range(2) for kind in "kv"}
    assert step_inputs == {"token": ["N"], "y": ["N"], "position": [1], **buffers}


def test_the_gate_checks_every_graph_and_the_sampling_path(vq_model):
    report = json.loads((vq_model / "vae.json").read_text())["parity"]["fp32"]
    assert report["passed"]
    graphs = {(c["graph"], c["against"]) for c in report["checks"]}
    for role in ("encoder", "decoder", "prior", "prior_step"):
        assert (role, "onnxruntime-cpu") in graphs and (role, "onnx.reference") in graphs
    sampling = {c["graph"]: c for c in report["checks"] if c["graph"].startswith("prior_step") and c["batch"] == 7}
    codes = [c for c in report["checks"] if c["against"] == "torch sample_codes (same uniforms)"]
    assert len(codes) == 1 and codes[0]["passed"] and codes[0]["mean_abs"] == 0.0
    assert sampling["prior_step+prior"]["passed"]


def test_the_sampling_check_fails_when_the_step_graph_is_another_prior(vq_run, vq_unconditional_model, tmp_path):
    """The check can fail: a step graph from other weights draws other codes."""
    model, _, _ = load_run(vq_run)
    other = {name: p.clone() for name, p in model.prior.state_dict().items()}
    with torch.no_grad():
        for p in model.prior.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    step = Graph(export_role(model, "prior_step", 18))
    model.prior.load_state_dict(other)
    prior = Graph(export_role(model, "prior", 18))
    checks = vq_sampling_checks(model, step, prior, np.random.default_rng(0), Tolerance(1e-3, 1e-4))
    assert not checks[0]["passed"] and "codes differ" in checks[0]["error"]
    assert not checks[1]["passed"]


@pytest.mark.parametrize("position", [0, 5, 15])
def test_the_prior_is_causal_in_torch_and_in_onnx(vq_run, vq_model, position):
    """Changing the codes at and after a position never changes the logits at that position (or before)."""
    model, _, _ = load_run(vq_run)
    rng = np.random.default_rng(position)
    codes = rng.integers(0, 16, (6, 4, 4)).astype(np.int64)
    changed = codes.copy().reshape(6, 16)
    changed[:, position:] = rng.integers(0, 16, (6, 16 - position))
    changed = changed.reshape(6, 4, 4)
    assert (changed.reshape(6, 16)[:, position:] != codes.reshape(6, 16)[:, position:]).any()
    y = np.arange(6, dtype=np.int64)
    with torch.no_grad():
        module = torch_roles(model)["prior"].module(model)
        before = module(torch.from_numpy(codes), torch.from_numpy(y)).numpy().reshape(6, 16, -1)
        after = module(torch.from_numpy(changed), torch.from_numpy(y)).numpy().reshape(6, 16, -1)
    session = ort.InferenceSession(str(vq_model / "prior.onnx"), providers=["CPUExecutionProvider"])
    onnx_before = session.run(None, {"codes": codes, "y": y})[0].reshape(6, 16, -1)
    onnx_after = session.run(None, {"codes": changed, "y": y})[0].reshape(6, 16, -1)
    for a, b in ((before, after), (onnx_before, onnx_after)):
        np.testing.assert_array_equal(a[:, : position + 1], b[:, : position + 1])
        if position < 15:  # the change is seen after it
            assert np.abs(a[:, position + 1 :] - b[:, position + 1 :]).max() > 1e-4


def test_the_legacy_target_exports_every_role(vq_run, vq_model, tmp_path):
    """--target legacy: the prior's LayerNormalization is rewritten into opset-13 primitives, the
    gate (sampling checks included) passes, and the folder draws the portable folder's codes."""
    import onnx

    from vaeport.export import export
    from vaeport.runtime import VAE

    folder = export(vq_run, tmp_path / "legacy", target="legacy")
    legacy, portable = VAE.load(folder), VAE.load(vq_model)
    assert legacy.manifest.opset == 13
    for role in ("prior", "prior_step"):
        assert "LayerNormalization" not in {n.op_type for n in onnx.load(folder / f"{role}.onnx").graph.node}
    np.testing.assert_array_equal(legacy.sample_latent(24, seed=1, label=2), portable.sample_latent(24, seed=1, label=2))
    images = portable.sample(4, seed=0, label=1)
    np.testing.assert_array_equal(legacy.encode(images), portable.encode(images))


def test_export_calibrates_a_vq_vaes_anomaly_score_on_held_out_images(tmp_path):
    """vae-train --holdout, then vae-export: the VQ-VAE's folder carries an anomaly calibration over
    its bound's terms and the image statistics, and score applies it."""
    from vaeport.export import export
    from vaeport.runtime import VAE
    from vaeport.train.datasets import load_dataset

    from ..conftest import VQ_SETTINGS
    from ..helpers import make_run

    run = make_run(tmp_path / "run", epochs=1, prior_epochs=1, holdout=500, **VQ_SETTINGS)
    vq = VAE.load(export(run, tmp_path / "model"))
    calibration = vq.manifest.calibration()
    assert calibration is not None and {"nll", "kl", "recon"} <= set(calibration.features)
    scores = vq.score(load_dataset("digits", seed=0).test)
    assert np.isfinite(scores["anomaly"]).all() and scores["flagged"].mean() < 0.1
