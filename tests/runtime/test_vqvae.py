"""The runtime's VQVAE: codes in and out, seeded step-by-step sampling, scores, generation, refusals."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vaeport.runtime import VAE
from vaeport.runtime.cli import main as generate_main
from vaeport.runtime.errors import InputError
from vaeport.runtime.generate import GenerateSpec, generate
from vaeport.runtime.sampling import prior_uniforms
from vaeport.runtime.vq_sampling import draw, draw_classes
from vaeport.runtime.vqvae import VQVAE
from vaeport.train import ar_prior
from vaeport.train.datasets import load_dataset
from vaeport.train.load import load_run


@pytest.fixture(scope="module")
def vq(vq_model):
    return VAE.load(vq_model, device="cpu")


@pytest.fixture(scope="module")
def test_images():
    return load_dataset("digits", seed=0).test[:40]


def test_load_returns_a_vqvae_with_its_codes(vq):
    assert isinstance(vq, VQVAE) and vq.kind == "vqvae" and not vq.variational
    assert vq.code_grid == (4, 4) and vq.codebook_size == 16 and vq.conditional
    assert "codes 4x4 of 16" in repr(vq)


def test_encode_decode_reconstruct_match_torch(vq, vq_run, test_images):
    model, _, _ = load_run(vq_run)
    codes = vq.encode(test_images)
    assert codes.shape == (40, 4, 4) and codes.dtype == np.int64
    with torch.no_grad():
        x = torch.from_numpy(test_images)
        np.testing.assert_array_equal(codes, model.autoencoder.encode(x).numpy())
        want = torch.sigmoid(model.autoencoder.decode(torch.from_numpy(codes))).numpy()
    np.testing.assert_allclose(vq.decode(codes), want, atol=1e-5)
    np.testing.assert_array_equal(vq.reconstruct(test_images), vq.decode(codes))


def test_sampling_is_seeded_per_image_and_matches_torch_from_the_same_uniforms(vq, vq_run):
    codes = vq.sample_latent(12, seed=5, label=3)
    np.testing.assert_array_equal(codes, vq.sample_latent(12, seed=5, label=3))
    assert not np.array_equal(codes, vq.sample_latent(12, seed=6, label=3))
    # image i depends only on (seed, i): a later range alone gives the same grids
    np.testing.assert_array_equal(codes[7:], vq.sample_latent(5, seed=5, start=7, label=3))
    # the runtime's draws (ONNX step graph + numpy) are torch's draws (eager step + torch) from the same uniforms
    model, _, _ = load_run(vq_run)
    uniforms = prior_uniforms(5, 0, 12, 17)[:, 1:]
    expected = ar_prior.sample_codes(model.prior, torch.from_numpy(uniforms), torch.full((12,), 3))
    np.testing.assert_array_equal(codes, expected.numpy())


def test_temperature_zero_is_greedy_and_temperature_changes_the_draws(vq):
    greedy = vq.sample_latent(4, seed=0, temperature=0.0, label=1)
    np.testing.assert_array_equal(greedy, vq.sample_latent(4, seed=99, temperature=0.0, label=1))
    assert not np.array_equal(vq.sample_latent(16, seed=0, label=1), vq.sample_latent(16, seed=0, temperature=2.0, label=1))


def test_draw_is_the_inverse_cdf():
    logits = np.log(np.array([[0.2, 0.3, 0.5]] * 5))
    u = np.array([0.0, 0.19, 0.2, 0.49, 0.999])
    np.testing.assert_array_equal(draw(logits, u), [0, 0, 1, 1, 2])
    torch_codes = ar_prior.draw(torch.from_numpy(logits), torch.from_numpy(u))
    np.testing.assert_array_equal(torch_codes.numpy(), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(draw_classes(np.array([0.05, 0.5, 0.95]), (1, 0, 9)), [0, 2, 2])


def test_unlabelled_sampling_draws_classes_from_the_training_frequencies(vq, vq_model):
    counts = json.loads((vq_model / "vae.json").read_text())["class_counts"]
    drawn = vq.drawn_classes(4000, seed=1)
    observed = np.bincount(drawn, minlength=10) / 4000
    np.testing.assert_allclose(observed, np.asarray(counts) / sum(counts), atol=0.03)
    # an unlabelled sample is the labelled sample of the class drawn for it
    codes = vq.sample_latent(6, seed=1)
    np.testing.assert_array_equal(codes, vq.sample_latent(6, seed=1, label=drawn[:6]))


def test_score_is_the_bound_in_nats_and_marginal_without_a_label(vq, test_images):
    labels = load_dataset("digits", seed=0).test_labels[:40]
    given = vq.score(test_images, label=labels)
    np.testing.assert_allclose(given["nll"], given["recon"] + given["kl"])
    np.testing.assert_allclose(given["kl"], vq.code_nll(vq.encode(test_images), labels))
    assert (given["kl"] > 0).all() and np.isnan(given["anomaly"]).all() and given["flagged"] is None
    # the anomaly features a VAE's score has, from the VQ-VAE's reconstruction
    recon = vq.reconstruct(test_images)
    np.testing.assert_allclose(given["mse"], ((recon - test_images) ** 2).reshape(40, -1).mean(axis=1), rtol=1e-6)
    for name in ("complexity", "sharpness", "sharpness_gap", "residual_peak", "brightness"):
        assert np.isfinite(given[name]).all(), name
    marginal = vq.score(test_images)
    # log sum_y p(y) p(codes|y) >= log p(y*) p(codes|y*) for the label's own class
    assert (marginal["kl"] <= given["kl"] - np.log(np.asarray(vq.class_weights())[labels] / sum(vq.class_weights())) + 1e-9).all()
    assert marginal["label"].shape == (40,)
    np.testing.assert_allclose(marginal["recon"], given["recon"])  # the codes do not depend on the class
    # an image's score does not depend on the batch around it
    np.testing.assert_allclose(vq.score(test_images[3:4], label=labels[3:4])["nll"], given["nll"][3:4])


def test_vae_score_fits_and_applies_an_anomaly_calibration(vq_model, tmp_path):
    """vae-score --fit on normal images of a VQ-VAE (its bound's terms among the features), then
    scoring with it: the normal test images are flagged about as often as the rate asked for,
    images of noise nearly always."""
    from vaeport.runtime.score_cli import main as score_main
    from vaeport.runtime.score_cli import read_calibration

    data = load_dataset("digits", seed=0)
    np.save(tmp_path / "normal.npy", data.train[:600])
    fitted = tmp_path / "calibration.json"
    args = ["--fit", tmp_path / "normal.npy", "--fpr", "0.05", "--out", fitted, "--quiet"]
    result = CliRunner().invoke(score_main, [str(a) for a in [vq_model, *args]])
    assert result.exit_code == 0, result.output
    assert {"nll", "kl", "recon"} <= set(json.loads(fitted.read_text())["features"])
    vq = VAE.load(vq_model, device="cpu", threads=1)
    used = read_calibration(fitted)
    normal = vq.score(data.test, calibration=used)["flagged"].mean()
    noise = np.random.default_rng(0).random((100, 1, 8, 8), dtype=np.float32)
    assert normal < 0.15 and vq.score(noise, calibration=used)["flagged"].mean() > 0.9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda vq: vq.decode(np.zeros((2, 4, 4), dtype=np.float32)), r"expected codes of shape \[N,4,4\]"),
        (lambda vq: vq.decode(np.zeros((2, 3, 4), dtype=np.int64)), r"got \[2,3,4\] int64"),
        (lambda vq: vq.decode(np.full((1, 4, 4), 16)), r"integers in \[0, 16\), got values in \[16, 16\]"),
        (lambda vq: vq.decode(np.full((1, 4, 4), -1)), r"got values in \[-1, -1\]"),
        (lambda vq: vq.decode(np.zeros((1, 4, 4), dtype=np.int64), label=2), "expected no label for a VQ-VAE's decoder"),
        (lambda vq: vq.sample(2, seed=0, label="cat"), "expected label"),
        (lambda vq: vq.interpolate(np.zeros((8, 8)), np.zeros((8, 8))), "interpolate is not defined for a VQ-VAE"),
        (lambda vq: vq.posterior(np.zeros((1, 1, 8, 8), dtype=np.float32)), "no posterior distribution"),
    ],
)
def test_bad_input_is_refused_in_one_line(vq, call, message):
    with pytest.raises(InputError, match=message) as caught:
        call(vq)
    assert "\n" not in str(caught.value)


def test_a_label_into_an_unconditional_prior_is_refused(vq_unconditional_model):
    vq = VAE.load(vq_unconditional_model, device="cpu")
    with pytest.raises(InputError, match="expected no label: this model is unconditional"):
        vq.sample(2, seed=0, label=1)
    assert vq.sample(3, seed=0).shape == (3, 1, 8, 8)


def test_generate_shards_are_exact_and_write_the_drawn_classes(vq, tmp_path):
    whole = generate(vq, GenerateSpec(n=30, seed=2, chunk_size=10, batch_size=7), tmp_path / "whole")
    assert whole["images_written"] == 30
    for i in range(3):
        generate(vq, GenerateSpec(n=30, seed=2, chunk_size=10, batch_size=7, shard=(i, 3)), tmp_path / "parts")
    for name in sorted(p.name for p in (tmp_path / "whole").glob("*.npy")):
        np.testing.assert_array_equal(np.load(tmp_path / "whole" / name), np.load(tmp_path / "parts" / name))
    labels = np.concatenate([np.load(p) for p in sorted((tmp_path / "whole").glob("labels-*.npy"))])
    np.testing.assert_array_equal(labels, vq.drawn_classes(30, seed=2))
    images = np.concatenate([np.load(p) for p in sorted((tmp_path / "whole").glob("images-*.npy"))])
    np.testing.assert_array_equal(images[:5], vq.sample(5, seed=2))


def test_vae_generate_per_class_on_a_vq_model(vq_model, tmp_path):
    out = tmp_path / "gen"
    done = CliRunner().invoke(generate_main, [str(vq_model), "--per-class", "2", "--out", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    labels = np.load(next(out.glob("labels-*.npy")))
    np.testing.assert_array_equal(labels, np.arange(20) % 10)


def test_vae_eval_gives_the_same_bound_on_both_paths_and_as_training(vq_run, vq_model):
    from vaeport.train import evaluate

    torch_side, onnx_side = evaluate(vq_run, k=0), evaluate(vq_model, k=0)
    for key in ("test_neg_elbo", "test_recon", "test_kl", "test_mse", "perplexity"):
        assert onnx_side[key] == pytest.approx(torch_side[key], rel=1e-5), key
    assert onnx_side["codes_used"] == torch_side["codes_used"] and onnx_side["conditional"]
    last = json.loads((vq_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert torch_side["test_neg_elbo"] == pytest.approx(last["test_neg_elbo"], rel=1e-5)
    with pytest.raises(InputError, match="--factors: expected a model with continuous latents"):
        evaluate(vq_model, factors=True)
