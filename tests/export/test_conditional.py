"""A conditional VAE end to end: labels into training, both graphs, the manifest (format_version 2),
the runtime API and the evaluation on both paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vaeport.runtime import VAE
from vaeport.runtime.errors import InputError, ModelFolderError
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.config import ModelConfig
from vaeport.train.datasets import load_dataset
from vaeport.train.load import load_run
from vaeport.train.vae import VAE as TorchVAE
from vaeport.train.vae import DecoderImage

from ..runtime.folders import copy_folder

DIGITS = tuple(str(d) for d in range(10))


def edit_manifest(folder, change) -> None:
    path = folder / "vae.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# -- the torch model ----------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_label_enters_encoder_and_decoder(arch, kind):
    torch.manual_seed(0)
    model = TorchVAE(ModelConfig((1, 8, 8), latent_dim=3, arch=arch, hidden=(8,), kind=kind, classes=("a", "b", "c")))
    for p in (*model.encoder.labels.parameters(), *model.decoder.labels.parameters()):
        torch.nn.init.normal_(p)  # trained weights: the zero start would hide the label
    x, z = torch.rand(2, 1, 8, 8), torch.randn(2, 3)
    with torch.no_grad():
        assert not torch.allclose(model.encode(x, torch.tensor([0, 0]))[0], model.encode(x, torch.tensor([1, 1]))[0])
        assert not torch.allclose(model.decode(z, torch.tensor([0, 0])), model.decode(z, torch.tensor([2, 2])))
    with pytest.raises(InputError, match="expected labels y"):
        model.decode(z)


@pytest.mark.parametrize(("arch", "hidden"), [("mlp", (8, 6)), ("conv", (4, 8))])
def test_the_label_enters_every_weighted_layer(arch, hidden):
    """One class bias per Linear/Conv2d, each as wide as that layer's output; the decoder's last
    one is the per-class bias of the logits."""
    config = ModelConfig((1, 28, 28), latent_dim=3, arch=arch, hidden=hidden, depth=2, classes=("a", "b"))
    model = TorchVAE(config)
    for part in (model.encoder, model.decoder):
        weighted = [
            m
            for name, m in part.named_modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and not name.startswith("head")
        ]
        assert [b.weight.shape for b in part.labels] == [
            (2, m.out_features if isinstance(m, torch.nn.Linear) else m.out_channels) for m in weighted
        ]
    z, y = torch.randn(2, 3), torch.tensor([0, 1])
    with torch.no_grad():
        last = model.decoder.labels[-1]
        before = model.decode(z, y)
        last.weight[1].fill_(1.0)  # class 1's logits bias (conv: per sub-pixel channel)
        after = model.decode(z, y)
    torch.testing.assert_close(after[0], before[0])
    assert (after[1] - before[1]).abs().min() > 0.99


def test_unconditional_model_refuses_labels_and_keeps_its_weights():
    model = TorchVAE(ModelConfig((1, 8, 8), hidden=(8,)))
    assert not any("label" in name for name in model.state_dict())
    with pytest.raises(InputError, match="expected no labels"):
        model.decode(torch.randn(2, 20), torch.tensor([0, 1]))


def test_importance_samples_see_their_own_image_label():
    """forward with eps (k, N, D) decodes sample j of image i with image i's label."""
    torch.manual_seed(0)
    model = TorchVAE(ModelConfig((1, 8, 8), latent_dim=3, hidden=(8,), classes=("a", "b", "c")))
    for p in model.decoder.labels.parameters():
        torch.nn.init.normal_(p)
    x, y, eps = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 1]), torch.randn(3, 4, 3)
    with torch.no_grad():
        logits, mean, log_var = model(x, y, eps=eps)
        for j in range(3):
            z = mean + torch.exp(0.5 * log_var) * eps[j]
            torch.testing.assert_close(logits[j * 4 : (j + 1) * 4], model.decode(z, y))


# -- training data ------------------------------------------------------------------------------
def test_conditional_needs_labels(tmp_path):
    np.save(tmp_path / "images.npy", np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    cfg = TrainConfig(dataset=f"npy:{tmp_path / 'images.npy'}", conditional=True, epochs=1, batch_size=8)
    with pytest.raises(InputError, match="--conditional needs labels.*X.labels.npy"):
        fit(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_npy_labels_and_class_names_from_sidecar_files(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "shoes.npy", rng.integers(0, 256, (40, 8, 8), dtype=np.uint8))
    labels = np.arange(40) % 3
    np.save(tmp_path / "shoes.labels.npy", labels)
    data = load_dataset(f"npy:{tmp_path / 'shoes.npy'}")
    assert data.classes == ("0", "1", "2")
    assert sorted(np.concatenate([data.train_labels, data.test_labels]).tolist()) == sorted(labels.tolist())
    (tmp_path / "shoes.classes.txt").write_text("boot\nsandal\nsneaker\n")
    assert load_dataset(f"npy:{tmp_path / 'shoes.npy'}").classes == ("boot", "sandal", "sneaker")
    (tmp_path / "shoes.classes.txt").write_text("boot\nsandal\n")
    with pytest.raises(InputError, match=r"expected labels in 0..1 \(2 classes\), got values in 0..2"):
        load_dataset(f"npy:{tmp_path / 'shoes.npy'}")
    np.save(tmp_path / "shoes.labels.npy", labels[:30])
    with pytest.raises(InputError, match=r"expected 40 labels \(one per image"):
        load_dataset(f"npy:{tmp_path / 'shoes.npy'}")
    np.save(tmp_path / "shoes.labels.npy", labels.astype(np.float32))
    with pytest.raises(InputError, match="expected integer class indices 0..K-1"):
        load_dataset(f"npy:{tmp_path / 'shoes.npy'}")


def test_run_records_the_classes(cvae_run):
    model, cfg, record = load_run(cvae_run)
    assert cfg.conditional and model.config.classes == DIGITS
    assert record["data"]["classes"] == list(DIGITS)


# -- export and the manifest --------------------------------------------------------------------
def test_manifest_version_2_lists_classes_and_every_input(cvae_model):
    manifest = json.loads((cvae_model / "vae.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["classes"] == list(DIGITS)
    assert len(manifest["class_counts"]) == 10 and sum(manifest["class_counts"]) == manifest["training"]["train_images"]
    label = {"name": "y", "shape": ["N"], "dtype": "int64"}
    assert manifest["inputs"]["encoder"] == [{"name": "x", "shape": ["N", 1, 8, 8], "dtype": "float32"}, label]
    assert manifest["inputs"]["decoder"] == [{"name": "z", "shape": ["N", 4], "dtype": "float32"}, label]
    for file in manifest["files"].values():
        assert file["inputs"][1] == label
    assert set(manifest["graphs"]) == {"fp32", "fp16", "int8"}


def test_parity_gate_covers_the_label(cvae_model):
    parity = json.loads((cvae_model / "vae.json").read_text())["parity"]
    checks = parity["fp32"]["checks"]
    assert {(c["graph"], c["against"]) for c in checks} >= {
        ("encoder", "onnxruntime-cpu"),
        ("encoder", "onnx.reference"),
        ("decoder", "onnxruntime-cpu"),
        ("decoder", "onnx.reference"),
        ("encoder+decoder", "numpy reparameterize + onnxruntime-cpu"),
    }
    assert all(c["passed"] for c in checks)
    assert parity["fp16"]["passed"] and parity["int8"]["passed"]


def test_labelled_decode_matches_torch(cvae_run, cvae_model):
    model, _, _ = load_run(cvae_run)
    z = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    y = np.arange(20) % 10
    with torch.no_grad():
        want = DecoderImage(model.decoder)(torch.from_numpy(z), torch.from_numpy(y)).numpy()
    for variant, atol in (("fp32", 1e-5), ("fp16", 1e-2), ("int8", 0.1)):
        got = VAE.load(cvae_model, device="cpu", variant=variant).decode(z, label=y)
        np.testing.assert_allclose(got, want, atol=atol)


def test_version_1_manifest_ignores_a_classes_key(digits_model, tmp_path):
    folder = copy_folder(digits_model, tmp_path / "v1")
    edit_manifest(folder, lambda m: m.update(format_version=1, classes=["a", "b"]))
    assert VAE.load(folder, device="cpu").classes is None


def test_manifest_classes_must_match_the_graphs(cvae_model, digits_model, tmp_path):
    unlabelled = copy_folder(cvae_model, tmp_path / "no-classes")
    edit_manifest(unlabelled, lambda m: m.update(classes=None, class_counts=None))
    with pytest.raises(ModelFolderError, match=r"expected the encoder graph, x \[N,1,8,8\] ->.*got x \[N,1,8,8\], y"):
        VAE.load(unlabelled, device="cpu")
    labelled = copy_folder(digits_model, tmp_path / "classes")
    edit_manifest(labelled, lambda m: m.update(classes=["a", "b"]))
    with pytest.raises(ModelFolderError, match=r"expected the encoder graph, x \[N,1,8,8\], y \[N\]"):
        VAE.load(labelled, device="cpu")
    duplicated = copy_folder(cvae_model, tmp_path / "dup")
    edit_manifest(duplicated, lambda m: m.update(classes=["a"] * 10))
    with pytest.raises(ModelFolderError, match="expected classes to be null or a list of distinct"):
        VAE.load(duplicated, device="cpu")


# -- the runtime API ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cvae(cvae_model):
    return VAE.load(cvae_model, device="cpu")


def test_sample_by_name_index_or_array(cvae):
    assert cvae.classes == DIGITS and cvae.conditional and "10 classes" in repr(cvae)
    by_name = cvae.sample(6, seed=1, label="7")
    np.testing.assert_array_equal(by_name, cvae.sample(6, seed=1, label=7))
    np.testing.assert_array_equal(by_name, cvae.sample(6, seed=1, label=np.full(6, 7)))
    np.testing.assert_array_equal(by_name, cvae.sample(6, seed=1, label=["7"] * 6))
    np.testing.assert_array_equal(by_name, cvae.sample(6, seed=1, label=np.int64(7)))
    assert not np.allclose(by_name, cvae.sample(6, seed=1, label=3))  # the class changes the images


def test_same_latents_every_class(cvae):
    """One style per row, one class per column: the docstring's grid, and sample's latents."""
    z = cvae.sample_latent(3, seed=0)
    grid = cvae.decode(np.repeat(z, 10, 0), label=np.tile(np.arange(10), 3))
    assert grid.shape == (30, 1, 8, 8)
    np.testing.assert_allclose(grid[4::10], cvae.sample(3, seed=0, label=4), atol=1e-6)


def test_encode_reconstruct_interpolate_with_label(cvae, cvae_model):
    data = load_dataset("digits")
    x, y = data.test[:8], data.test_labels[:8]
    mean, log_var = cvae.encode(x, label=y)
    assert mean.shape == (8, 4) and log_var.shape == (8, 4)
    assert not np.allclose(mean, cvae.encode(x, label=(y + 1) % 10)[0])
    np.testing.assert_allclose(cvae.reconstruct(x, label=y), cvae.decode(mean, label=y), atol=1e-6)
    frames = cvae.interpolate(x[0], x[1], steps=5, label=3)
    assert frames.shape == (5, 1, 8, 8)
    za = cvae.encode(x[:1], label=3)[0][0]
    np.testing.assert_allclose(frames[0], cvae.decode(za, label=3)[0], atol=1e-5)
    with pytest.raises(InputError, match="one class for the whole interpolation"):
        cvae.interpolate(x[0], x[1], label=[3, 4])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v: v.sample(2, seed=0), r"expected a label: this model is conditional.*0 '0', 1 '1'"),
        (lambda v: v.sample(2, seed=0, label="cat"), r"expected label to be a class of this model \(0 '0'.*got 'cat'"),
        (lambda v: v.sample(2, seed=0, label=10), r"class index 0..9 .*got 10"),
        (lambda v: v.sample(2, seed=0, label=-1), r"class index 0..9 .*got -1"),
        (lambda v: v.sample(2, seed=0, label=True), r"a class name or index .*got True"),
        (lambda v: v.sample(2, seed=0, label=2.0), r"a class name or index .*got 2.0"),
        (lambda v: v.sample(2, seed=0, label=[1, 2, 3]), r"expected label to hold 2 labels"),
        (lambda v: v.decode(np.zeros((2, 4), np.float32), label=np.array([1, 12])), r"class indices 0..9 .*got 12"),
        (lambda v: v.encode(np.zeros((2, 1, 8, 8), np.float32)), r"this model is conditional"),
    ],
)
def test_label_errors_name_the_classes(cvae, call, message):
    with pytest.raises(InputError, match=message):
        call(cvae)


def test_unconditional_model_refuses_a_label(digits_model):
    vae = VAE.load(digits_model, device="cpu")
    with pytest.raises(InputError, match="expected no label: this model is unconditional"):
        vae.sample(2, seed=0, label="7")


# -- evaluation ---------------------------------------------------------------------------------
def test_eval_bounds_log_p_x_given_y_on_both_paths(cvae_run, cvae_model):
    on_torch = evaluate(cvae_run, k=8, checkpoint="last")
    on_onnx = evaluate(cvae_model, k=8, device="cpu")
    assert on_torch["conditional"] and on_onnx["conditional"]
    assert on_onnx["test_iwae_nll"] == pytest.approx(on_torch["test_iwae_nll"], rel=1e-5)
    assert on_onnx["test_neg_elbo"] == pytest.approx(on_torch["test_neg_elbo"], rel=1e-5)


def test_scores_with_labels(cvae):
    data = load_dataset("digits")
    x, y = data.test[:6], data.test_labels[:6]
    right = cvae.score(x, k=8, label=y)["nll"]
    wrong = cvae.score(x, k=8, label=(y + 5) % 10)["nll"]
    assert np.isfinite(right).all() and right.mean() < wrong.mean()


def test_unlabelled_scores_are_marginal_over_the_classes(cvae):
    """Without labels: nll bounds -log sum_y p(y) p(x|y) (per-class scores with the training
    frequencies, the same seed), the other statistics are the most probable class's, `label` names
    it, and the folder's calibration (fitted on unlabelled images) applies."""
    data = load_dataset("digits")
    x = data.test[:6]
    marginal = cvae.score(x, k=8, seed=1)
    per_class = np.stack([cvae.score(x, k=8, seed=1, label=c)["nll"] for c in range(10)])
    counts = np.asarray(cvae.manifest.class_counts, dtype=np.float64)
    joint = np.log(counts / counts.sum())[:, None] - per_class
    expected = -np.log(np.exp(joint).sum(0))
    np.testing.assert_allclose(marginal["nll"], expected, rtol=1e-9)
    np.testing.assert_array_equal(marginal["label"], joint.argmax(0))
    best = cvae.score(x, k=8, seed=1, label=marginal["label"])
    np.testing.assert_allclose(marginal["kl"], best["kl"], rtol=1e-9)
    # p(x|y*) >= p(x) >= p(y*) p(x|y*) for the best class y*
    assert (per_class.min(0) <= marginal["nll"]).all() and (marginal["nll"] <= (-joint).min(0)).all()
    assert np.isnan(best["anomaly"]).all()  # labelled: no folder calibration unless passed


def test_legacy_target_carries_the_label(cvae_run, cvae, tmp_path):
    """The label is one Gather, an op opset 13 has: --target legacy exports conditional models."""
    import onnx

    from vaeport.export import export

    folder = export(cvae_run, tmp_path / "legacy", target="legacy")
    legacy = VAE.load(folder, device="cpu")
    assert legacy.manifest.opset == 13 and legacy.classes == DIGITS
    ops = {node.op_type for node in onnx.load(str(folder / "decoder.onnx")).graph.node}
    assert "Gather" in ops and "GatherND" not in ops
    np.testing.assert_allclose(
        legacy.sample(5, seed=0, label=[0, 2, 4, 6, 8]), cvae.sample(5, seed=0, label=[0, 2, 4, 6, 8]), atol=1e-5
    )
