"""benchmarks/anomaly.py's calibration for a model folder that has none (the shipped VQ-VAE's case)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from anomaly import K, calibrate_on_test

from vaeport.runtime import VAE
from vaeport.train.datasets import load_dataset


def test_a_folder_without_calibration_is_calibrated_on_the_images_set_aside(vq_model):
    vq = VAE.load(vq_model)
    assert vq.calibration is None
    images = load_dataset("digits").train  # 1,617: the 1% threshold needs at least 500
    fitted = calibrate_on_test(vq, images)
    assert fitted.k == K and fitted.fpr == 0.01 and fitted.images == len(images)
    normal = vq.score(images, k=K, calibration=fitted)
    # the threshold is the interpolated 99% quantile of these very images: 1% of them, up to one image
    assert 0.01 - 1 / len(images) <= normal["flagged"].mean() <= 0.01 + 1 / len(images)
    inverted = vq.score(1.0 - images, k=K, calibration=fitted)
    assert np.median(inverted["anomaly"]) > np.quantile(normal["anomaly"], 0.99)
