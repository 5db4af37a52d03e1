"""benchmarks/priors.py's estimators: the aggregate posterior's mixture density and the holes."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import multivariate_normal

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from priors import HOLE, holes, mixture_log_density

from vaeport.export import export
from vaeport.runtime import VAE
from vaeport.train.datasets import load_dataset

from ..helpers import make_run


def test_mixture_log_density_is_the_mixture_of_the_gaussians():
    rng = np.random.default_rng(0)
    mean, log_var = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)) * 0.3
    z = rng.standard_normal((11, 3)).astype(np.float32)
    want = np.log(
        np.mean([multivariate_normal(m, np.diag(np.exp(v))).pdf(z) for m, v in zip(mean, log_var, strict=True)], axis=0)
    )
    np.testing.assert_allclose(mixture_log_density(z, mean, log_var, batch=4), want, rtol=1e-10)


def test_a_prior_far_from_the_codes_is_all_holes(tmp_path):
    """A VAE trained one epoch has codes near 0: its own prior has few holes; the same estimate
    with the posteriors moved far away finds every prior sample in a hole."""
    model = export(make_run(tmp_path / "run", hidden=(32,), latent_dim=2, epochs=2), tmp_path / "m")
    vae = VAE.load(model)
    data = load_dataset("digits", seed=0)
    test = data.test
    near = holes(vae, test, data.train, 500)
    assert near["share_of_prior_samples_in_holes"] < 0.5

    class Far:  # the same model with every posterior shifted by 50
        prior = vae.prior

        def encode(self, x):
            mean, log_var = vae.encode(x)
            return mean + 50.0, log_var

        def sample_latent(self, n, seed):
            return vae.sample_latent(n, seed=seed)

    far = holes(Far(), test, data.train, 500)
    assert far["share_of_prior_samples_in_holes"] == 1.0 and far["kl_prior_to_aggregate_posterior"] > HOLE
    # the reference compares the aggregate posteriors of training and test images: moving both moves nothing
    assert far["reference_share_in_holes"] == pytest.approx(near["reference_share_in_holes"], abs=0.01)
    assert far["reference_kl_to_aggregate_posterior"] == pytest.approx(near["reference_kl_to_aggregate_posterior"], abs=0.05)
    assert near["reference_share_in_holes"] < 0.5
