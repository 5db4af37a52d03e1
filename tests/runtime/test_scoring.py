"""Per-image scores on the ONNX path: invariance, agreement with vae-eval, the calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vaeport.export import export
from vaeport.runtime import VAE, InputError, ModelFolderError
from vaeport.runtime.evaluate import evaluate, onnx_backend
from vaeport.runtime.scoring import FIELDS, Calibration, NoCalibrationWarning, score
from vaeport.train import TrainConfig, fit
from vaeport.train.datasets import load_dataset

from .folders import copy_folder


@pytest.fixture(scope="module")
def scored_model(tmp_path_factory):
    """An MLP VAE on digits with 500 training images held out, exported with its calibration."""
    root = tmp_path_factory.mktemp("scored")
    run = fit(
        TrainConfig(hidden=(64,), latent_dim=4, epochs=8, holdout=500, threads=1, seed=1), root / "run", quiet=True
    )
    return export(run, root / "model")


@pytest.fixture(scope="module")
def vae(scored_model):
    return VAE.load(scored_model, device="cpu")


@pytest.fixture(scope="module")
def test_images():
    return load_dataset("digits", seed=1).test


def test_every_field_one_value_per_image(vae, test_images):
    s = vae.score(test_images[:10], k=64)  # the calibration's k
    assert set(s) == set(FIELDS)
    assert all(len(v) == 10 for v in s.values()) and s["flagged"].dtype == bool
    assert np.all(s["nll"] > 0) and np.all(s["kl"] > 0) and np.all(np.isfinite(s["anomaly"]))
    np.testing.assert_allclose(s["bits_per_dim"], s["nll"] / (64 * np.log(2)))
    assert np.all(s["nll"] <= s["recon"] + s["kl"] + 5)  # the bound is near or below the ELBO's parts


def test_an_images_score_depends_on_nothing_else(vae, test_images):
    x = test_images[:20]
    whole = vae.score(x, k=64, seed=3)
    reversed_ = vae.score(x[::-1], k=64, seed=3)
    split = [vae.score(x[:7], k=64, seed=3), vae.score(x[7:], k=64, seed=3)]
    small_batches = score(vae, x, 64, 3, vae.calibration, batch_size=3)
    mixed = vae.score(np.concatenate([x[:5], test_images[100:140]]), k=64, seed=3)  # other company
    for name in ("nll", "recon", "kl", "anomaly", "complexity"):
        np.testing.assert_array_equal(whole[name], reversed_[name][::-1], err_msg=name)
        np.testing.assert_array_equal(whole[name], np.concatenate([p[name] for p in split]), err_msg=name)
        np.testing.assert_array_equal(whole[name], small_batches[name], err_msg=name)
        np.testing.assert_array_equal(whole[name][:5], mixed[name][:5], err_msg=name)
    assert np.isfinite(whole["anomaly"]).all()
    assert not np.array_equal(whole["nll"], vae.score(x, k=64, seed=4)["nll"])  # the seed matters


def test_mean_nll_agrees_with_vae_eval_within_monte_carlo_error(vae, test_images):
    """Same images and k, different (independent) noise: the per-image differences of the two
    IWAE-64 estimates average to zero within 4 standard errors."""
    k = 64
    ours = vae.score(test_images, k=k)["nll"]
    theirs = evaluate(onnx_backend(vae, "bernoulli"), test_images, k=k)["test_iwae_nll"]
    per_image = vae.score(test_images, k=k, seed=99)["nll"]  # a second independent estimate per image
    spread = np.std(ours - per_image) / np.sqrt(len(ours))
    assert abs(ours.mean() - theirs) < 4 * spread + 1e-9, (ours.mean(), theirs, spread)
    assert spread < 0.1  # the check is tight: a tenth of a nat at most


def test_calibration_threshold_and_flags(scored_model, vae, test_images):
    calibration = vae.calibration
    manifest = json.loads((scored_model / "vae.json").read_text())["scoring"]
    assert manifest["source"] == "500 training images held out of training (--holdout)" and manifest["fpr"] == 0.01
    assert calibration.images == 500 and calibration.k == 64
    s = vae.score(test_images, k=64)
    assert np.array_equal(s["flagged"], s["anomaly"] > calibration.threshold)
    assert s["flagged"].mean() < 0.05  # normal images: few flags
    noise = np.random.default_rng(0).random((50, 1, 8, 8)).astype(np.float32)
    assert vae.score(noise)["flagged"].all()
    assert Calibration.from_dict(calibration.to_dict(), "x").threshold == calibration.threshold


def test_fit_refuses_too_few_images_and_bad_rates(vae, test_images):
    stats = vae.score(test_images[:100], k=4)
    with pytest.raises(InputError, match="expected at least 500 normal images to calibrate 9 statistics"):
        Calibration.fit(stats, True, 0.01, 4, 0, "test")
    with pytest.raises(InputError, match="expected a false-positive rate between 0 and 0.5, got 0.7"):
        Calibration.fit(stats, True, 0.7, 4, 0, "test")


def test_uncalibrated_and_autoencoder_folders(ae_model, digits_model, test_images):
    plain = VAE.load(digits_model, device="cpu")
    assert plain.calibration is None
    with pytest.warns(NoCalibrationWarning, match="anomaly is NaN and flagged is None"):
        s = plain.score(test_images[:5], k=4)
    assert np.isnan(s["anomaly"]).all() and s["flagged"] is None
    with pytest.warns(NoCalibrationWarning):
        ae = VAE.load(ae_model, device="cpu").score(test_images[:5], k=4)
    assert np.isnan(ae["nll"]).all() and np.isnan(ae["kl"]).all() and np.isfinite(ae["recon"]).all()


def test_a_damaged_scoring_section_is_refused(scored_model, tmp_path):
    folder = copy_folder(scored_model, tmp_path / "bad")
    manifest = json.loads((folder / "vae.json").read_text())
    manifest["scoring"]["precision"] = [[1.0]]
    (folder / "vae.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="scoring: expected a vaeport-calibration record"):
        VAE.load(folder, device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "expected k \\(importance samples per image\\) to be an integer 1..10000"), ({"seed": -2}, "expected seed to be a non-negative integer")],
)
def test_bad_arguments(vae, test_images, kwargs, message):
    with pytest.raises(InputError, match=message):
        vae.score(test_images[:2], **kwargs)
    with pytest.raises(InputError, match=r"expected x of shape \[N,1,8,8\]"):
        vae.score(np.zeros((2, 28, 28), np.float32))


@pytest.mark.slow
def test_memory_stays_flat_in_the_number_of_images(scored_model):
    """Peak RSS while scoring 2,000 and 20,000 images in fresh processes: the inputs and the result
    columns grow (about 5 MB for 18,000 more 8x8 images), the working set does not."""
    import subprocess
    import sys

    script = """
import sys, numpy as np
from vaeport.runtime import VAE
vae = VAE.load(sys.argv[1], device="cpu")
x = np.random.default_rng(0).random((int(sys.argv[2]), 1, 8, 8), dtype=np.float32)
vae.score(x[:300], k=64)
before = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
vae.score(x, k=64)
print([int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] - before)
"""
    growth = {}
    for n in (2000, 20000):
        out = subprocess.run([sys.executable, "-c", script, str(scored_model), str(n)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        growth[n] = int(out.stdout) / 1024  # MB
    assert growth[20000] - growth[2000] < 15, growth
