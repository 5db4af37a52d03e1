"""The distributions and priors, defined once on each side: the numpy twin (runtime) and the torch
twin (training) agree; the prior's noise stream gives exact shards; the family registry names the
graph roles a folder must hold, and the runtime refuses a family or a prior it does not know."""

import json

import numpy as np
import pytest
import torch

from vaeport.runtime import VAE, ModelFolderError
from vaeport.runtime import distributions as rd
from vaeport.runtime.families import FAMILIES, family
from vaeport.train import distributions as td
from vaeport.train.families import TORCH_FAMILIES

from .folders import copy_folder


def gaussian(seed=0, n=5, d=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d), dtype=np.float32), (rng.standard_normal((n, d)) * 0.5).astype(np.float32)


def test_numpy_and_torch_posteriors_agree():
    mean, log_var = gaussian()
    eps = np.random.default_rng(1).standard_normal((4, 5, 3), dtype=np.float32)
    q, qt = rd.DiagonalGaussian(mean, log_var), td.DiagonalGaussian(torch.from_numpy(mean), torch.from_numpy(log_var))
    z = q.sample(eps)
    assert z.dtype == np.float32 and z.shape == (4, 5, 3)
    np.testing.assert_allclose(z, qt.sample(torch.from_numpy(eps)).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(q.log_prob(z), qt.log_prob(torch.from_numpy(z)).numpy(), rtol=1e-5)
    prior, prior_t = rd.StandardNormal(3), td.StandardNormal(3)
    np.testing.assert_allclose(q.kl(prior).sum(1), qt.kl(prior_t).numpy(), rtol=1e-5)
    np.testing.assert_allclose(prior.log_prob(z), prior_t.log_prob(torch.from_numpy(z)).numpy(), rtol=1e-6)


def test_kl_is_the_expectation_of_log_q_minus_log_p():
    mean, log_var = gaussian(n=2)
    q = rd.DiagonalGaussian(mean, log_var)
    z = q.sample(np.random.default_rng(2).standard_normal((200_000, 2, 3), dtype=np.float32))
    monte_carlo = (q.log_prob(z) - rd.StandardNormal(3).log_prob(z)).mean(0)
    np.testing.assert_allclose(monte_carlo, q.kl(rd.StandardNormal(3)).sum(1), atol=0.02)


def test_point_mass_is_its_own_sample_and_the_ae_has_no_density():
    code = np.ones((2, 3), dtype=np.float32)
    point = rd.posterior(code, None)
    assert isinstance(point, rd.PointMass) and point.sample(None) is code and point.mode() is code
    assert not family("ae").variational and family("vae").variational


def test_prior_noise_is_exact_in_any_shard_and_temperature_scales_it():
    prior = rd.StandardNormal(4)
    whole = prior.noise(7, 0, 3000)
    for start, count in ((0, 1), (1023, 2), (1500, 1500), (2999, 1)):
        np.testing.assert_array_equal(prior.noise(7, start, count), whole[start : start + count])
    np.testing.assert_array_equal(prior.sample(whole, 0.5), (whole * np.float32(0.5)).astype(np.float32))
    assert prior.sample(whole) is whole


def test_vae_samples_through_its_prior(digits_model):
    vae = VAE.load(digits_model, device="cpu")
    assert vae.prior.name == "normal" and vae.manifest.prior == "normal" and vae.kind == "vae"
    np.testing.assert_array_equal(vae.sample_latent(5, seed=3, start=10), vae.sample_latent(15, seed=3)[10:])
    q = vae.posterior(np.zeros((2, 1, 8, 8), dtype=np.float32))
    mean, log_var = vae.encode(np.zeros((2, 1, 8, 8), dtype=np.float32))
    np.testing.assert_array_equal(q.mode(), mean)
    np.testing.assert_array_equal(q.log_var, log_var)


def test_every_family_has_its_torch_side_and_a_role_per_graph():
    assert set(FAMILIES) == set(TORCH_FAMILIES)
    for kind, fam in FAMILIES.items():
        assert list(TORCH_FAMILIES[kind].roles) == list(fam.role_names)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["model"].update(prior="vamp"), "expected model.prior to be one of normal, flow, got 'vamp'"),
        (lambda m: m["model"].update(prior="flow"), "expected format_version 3 for the flow prior's graphs, got 2"),
        (lambda m: m["model"].update(kind="pixelvae"), "expected model.kind to be one of vae, ae, vqvae, got 'pixelvae'"),
        (lambda m: m["model"].update(kind="vqvae"), "expected format_version to be 4 for a VQ-VAE, got 2"),
        (
            lambda m: m.update(format_version=4) or m["model"].update(kind="vqvae"),
            r"expected model.code_grid to be \[h, w\], positive, got None",
        ),
        (lambda m: m["graphs"]["fp32"].pop("decoder"), "naming a file for each of encoder, decoder"),
    ],
)
def test_a_family_or_prior_the_runtime_does_not_know_is_refused(digits_model, tmp_path, edit, message):
    folder = copy_folder(digits_model, tmp_path / "m")
    manifest = json.loads((folder / "vae.json").read_text())
    edit(manifest)
    (folder / "vae.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match=message):
        VAE.load(folder)


def test_folders_without_a_prior_key_use_the_normal_prior(digits_model, tmp_path):
    """Every folder written before the prior was recorded (format 1 and 2) loads as N(0, I)."""
    folder = copy_folder(digits_model, tmp_path / "m")
    manifest = json.loads((folder / "vae.json").read_text())
    del manifest["model"]["prior"]
    (folder / "vae.json").write_text(json.dumps(manifest))
    old, new = VAE.load(folder), VAE.load(digits_model)
    assert old.prior.name == "normal"
    np.testing.assert_array_equal(old.sample(3, seed=1), new.sample(3, seed=1))
