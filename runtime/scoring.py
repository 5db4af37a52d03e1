"""Per-image scores and the default anomaly score (numpy + onnxruntime; `VAE.score`, `vae-score`).

Every image gets statistics of how the model sees it: the IWAE-k bound on -log p(x) (`nll`, and
`bits_per_dim`), the KL of its posterior to the prior, the reconstruction NLL and MSE of the
posterior mean, its PNG code length (input complexity, Serra et al. 2020), its sharpness (mean
absolute neighbour difference) and how much sharper it is than its reconstruction, its largest
reconstruction residuals and its brightness.

Raw likelihood ranks simpler out-of-distribution images as more likely (Nalisnick et al. 2019),
and no single statistic catches every kind of anomaly. The default `anomaly` score is a typicality
test over all of them (Mahalanobis distance of the statistics, positive ones on a log scale, from
their mean over normal images, with the normal covariance), so an image is anomalous when any
statistic, or their usual relation, is off in either direction. It is fitted on normal images
only (`Calibration.fit`), and `flagged` applies the threshold that gives the chosen false-positive
rate on them. benchmarks/anomaly.py measures it.

An image's noise is seeded by (seed, the image's own bytes), so its score does not depend on the
other images in the call, its position or the batch size.

A conditional model scores an image given its label (every statistic of p(x|y)), or, without one,
marginally: `nll` bounds -log p(x) = -log sum_y p(y) p(x|y) with p(y) the training class
frequencies, the other statistics are those of the most probable class, returned as `label` (the
model's own classification). The folder's calibration of a conditional model is fitted that way,
on unlabelled held-out images, so it applies to unlabelled scoring; scores given labels use a
calibration only when one is passed.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from vaeport.runtime.distributions import DiagonalGaussian, kl_to_prior
from vaeport.runtime.errors import InputError, ModelFolderError, VaeportError
from vaeport.runtime.evaluate import iwae_nll, log_weights, onnx_backend
from vaeport.runtime.inputs import unit_images
from vaeport.runtime.png import encode_png

STATISTICS = (
    "nll", "bits_per_dim", "recon", "kl", "mse", "complexity", "sharpness", "sharpness_gap", "residual_peak",
    "brightness",
)  # fmt: skip
FIELDS = (*STATISTICS, "anomaly", "flagged")
# What the default score uses; variational models only for the first two.
VAE_FEATURES = ("nll", "kl", "recon", "mse", "complexity", "sharpness", "sharpness_gap", "residual_peak", "brightness")
AE_FEATURES = tuple(f for f in VAE_FEATURES if f not in ("nll", "kl"))
LOG_SCALE = {"kl", "mse", "complexity", "sharpness", "residual_peak", "brightness"}  # positive by definition
RESIDUAL_SHARE = 0.025  # residual_peak: the mean of the largest 2.5% of |x - reconstruction|
METHOD = "mahalanobis on per-image statistics (positive ones as logs), fitted on normal images"
DEFAULT_K = 64
DEFAULT_FPR = 0.01
MAX_DECODE = 16_384  # decoded images per step (k per image): bounds memory whatever N is
CALIBRATION_FORMAT = "vaeport-calibration"


class NoCalibrationWarning(UserWarning):
    """Scores were computed without an anomaly calibration: `anomaly` is NaN and `flagged` None."""


def choose_calibration(
    own: Calibration | None, given: Calibration | None, identity: dict[str, Any], k: int, labelled: bool
) -> Calibration | None:
    """The calibration a score uses: `given` (checked to be for this model and k), else the model
    folder's `own` (not for labelled scores; at its own k only), else None, with a warning saying
    that `flagged` is then unknown and how to get one."""
    if given is not None:
        given.check_for(identity, k, "calibration")
        return given
    if own is not None and not labelled and k == own.k:
        return own
    if own is not None and not labelled:
        why = f"the model folder's calibration was fitted at k={own.k}, not k={k}: score with k={own.k}"
    elif own is not None:
        why = "the model folder's calibration is for unlabelled images: pass calibration= for labelled scores"
    else:
        why = "the model folder has none (export with --holdout, or fit one with vae-score --fit)"
    warnings.warn(f"no anomaly calibration: anomaly is NaN and flagged is None ({why})", NoCalibrationWarning, 3)
    return None


def image_noise_by_content(seed: int, images: np.ndarray, k: int, dim: int) -> np.ndarray:
    """eps [k, B, D] where image i's noise depends only on (seed, the bytes of image i)."""
    out = np.empty((len(images), k, dim), dtype=np.float32)
    for i, image in enumerate(images):
        digest = hashlib.blake2b(np.ascontiguousarray(image, dtype=np.float32).tobytes(), digest_size=8).digest()
        rng = np.random.default_rng([int(seed), int.from_bytes(digest, "little")])
        out[i] = rng.standard_normal((k, dim), dtype=np.float32)
    return out.transpose(1, 0, 2)


def sharpness(images: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring pixels, per image."""
    dy = np.abs(np.diff(images, axis=2)).mean(axis=(1, 2, 3)) if images.shape[2] > 1 else 0.0
    dx = np.abs(np.diff(images, axis=3)).mean(axis=(1, 2, 3)) if images.shape[3] > 1 else 0.0
    return (dy + dx).astype(np.float64)


def complexity_nats(images: np.ndarray) -> np.ndarray:
    """PNG code length of each image at 8 bits, in nats (input complexity)."""
    return np.array([len(encode_png(image)) * 8 * math.log(2) for image in images], dtype=np.float64)


def image_statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics of the images alone (no model): computed once however many classes are tried."""
    return {
        "complexity": complexity_nats(x),
        "sharpness": sharpness(x),
        "brightness": x.reshape(len(x), -1).mean(axis=1).astype(np.float64),
    }


def statistics(
    vae: Any,
    x: np.ndarray,
    k: int,
    seed: int,
    y: np.ndarray | None = None,
    of_images: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Every statistic of STATISTICS for images x [B,C,H,W] (float32 in [0, 1]) with labels y
    [B] on a conditional model (then every statistic is given y: `nll` bounds -log p(x|y)); NaN
    where the model has none (a plain autoencoder has no KL and no likelihood bound).
    `of_images`: image_statistics(x) when already computed."""
    if vae.kind == "vqvae":
        return code_statistics(vae, x, y, of_images)
    manifest = vae.manifest
    backend = onnx_backend(vae, manifest.likelihood, manifest.gaussian_scale)
    n, pixels = len(x), int(np.prod(x.shape[1:]))
    q = vae.posterior(x, label=y)
    mean = q.mode()
    reconstruction = vae.decode(mean, label=y)
    out = reconstruction_statistics(x, reconstruction, of_images)
    out["recon"] = -backend.log_likelihood(mean, x, y)
    if not isinstance(q, DiagonalGaussian):
        out["nll"] = out["kl"] = np.full(n, np.nan)
    else:
        eps = image_noise_by_content(seed, x, k, mean.shape[1])
        out["kl"] = kl_to_prior(q, vae.prior, q.sample(eps[0]))
        out["nll"] = iwae_nll(log_weights(backend, x, q, eps, y)[1])
    out["bits_per_dim"] = out["nll"] / (pixels * math.log(2))
    return out


def reconstruction_statistics(x: np.ndarray, reconstruction: np.ndarray, of_images: dict | None) -> dict:
    """The image statistics and those of the reconstruction's residual (mse, sharpness_gap, residual_peak)."""
    n, pixels = len(x), int(np.prod(x.shape[1:]))
    residual = np.abs(reconstruction.astype(np.float64) - x).reshape(n, -1)
    top = max(1, math.ceil(RESIDUAL_SHARE * pixels))
    out = dict(of_images if of_images is not None else image_statistics(x))
    out["mse"] = (residual**2).mean(axis=1)
    out["sharpness_gap"] = out["sharpness"] - sharpness(reconstruction)
    out["residual_peak"] = np.partition(residual, pixels - top, axis=1)[:, pixels - top :].mean(axis=1)
    return out


def decoded_codes(vae: Any, x: np.ndarray, of_images: dict | None) -> tuple[dict[str, Any], np.ndarray]:
    """A VQ-VAE's statistics that do not involve its prior (`recon` = -log p(x|codes), Bernoulli;
    the image and residual statistics of the reconstruction), and the codes."""
    from vaeport.runtime.evaluate import bernoulli_log_likelihood

    codes = vae.encode(x)
    reconstruction = vae.decode(codes)
    out: dict[str, Any] = reconstruction_statistics(x, reconstruction, of_images)
    out["recon"] = -bernoulli_log_likelihood(reconstruction, x)
    return out, codes


def with_rate(out: dict[str, Any], rate: np.ndarray, x: np.ndarray) -> dict[str, Any]:
    """`kl` = the rate -log p(codes), `nll` = recon + rate (a bound on -log p(x)), `bits_per_dim`."""
    out["kl"] = rate
    out["nll"] = out["recon"] + rate
    out["bits_per_dim"] = out["nll"] / (int(np.prod(x.shape[1:])) * math.log(2))
    return out


def code_statistics(vae: Any, x: np.ndarray, y: np.ndarray | None, of_images: dict | None) -> dict[str, Any]:
    """A VQ-VAE's STATISTICS, the rate -log p(codes[|y]) under its prior."""
    out, codes = decoded_codes(vae, x, of_images)
    return with_rate(out, vae.code_nll(codes, y), x)


def code_marginal_statistics(vae: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """A class-conditional VQ-VAE's statistics of unlabelled images: the codes and their decode do
    not depend on the class, so only the rate is marginal, -log sum_y p(y) p(codes|y); `label` is
    the most probable class."""
    out, codes = decoded_codes(vae, x, None)
    joint = class_prior(vae)[:, None] - np.stack(
        [vae.code_nll(codes, np.full(len(x), c, dtype=np.int64)) for c in range(len(vae.classes))]
    )  # [K, B] log p(codes, y)
    peak = joint.max(axis=0)
    out["label"] = joint.argmax(axis=0).astype(np.int64)
    return with_rate(out, -(peak + np.log(np.exp(joint - peak).sum(axis=0))), x)


@dataclass(frozen=True)
class Calibration:
    """The default anomaly score's parameters: statistics used, their normal mean and precision,
    and the threshold at `fpr` on the normal images it was fitted on."""

    features: tuple[str, ...]
    center: np.ndarray
    precision: np.ndarray
    threshold: float
    fpr: float
    k: int
    seed: int
    images: int  # how many normal images it was fitted on
    source: str  # where they came from
    model: dict[str, Any] | None = None  # model_identity() of the model it was fitted for

    def check_for(self, identity: dict[str, Any], k: int, where: str) -> None:
        """InputError unless this calibration was fitted for the model `identity` describes, at `k`
        importance samples (the statistics it thresholds move with both)."""
        if self.model is None:
            raise InputError(
                f"{where}: expected a calibration that records the model it was fitted for, got one without "
                "(made by an older vaeport): fit it again with vae-score --fit"
            )
        differs = [key for key in identity if self.model.get(key) != identity[key]]
        if differs:
            key = differs[0]
            raise InputError(
                f"{where}: expected a calibration fitted for this model, got one fitted for another "
                f"({key}: {self.model.get(key)!r}, this model: {identity[key]!r}); fit one with vae-score --fit"
            )
        if k != self.k:
            raise InputError(f"{where}: expected k={self.k} (the calibration was fitted at --k {self.k}), got k={k}")

    @staticmethod
    def design(stats: dict[str, np.ndarray], features: tuple[str, ...]) -> np.ndarray:
        columns = [np.log(np.maximum(stats[f], 1e-12)) if f in LOG_SCALE else stats[f] for f in features]
        return np.stack(columns, axis=1).astype(np.float64)

    def anomaly(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        """Squared Mahalanobis distance of each image's statistics from the normal ones."""
        centered = self.design(stats, self.features) - self.center
        return np.einsum("ij,jk,ik->i", centered, self.precision, centered)

    @classmethod
    def fit(
        cls,
        stats: dict[str, np.ndarray],
        bounded: bool,
        fpr: float,
        k: int,
        seed: int,
        source: str,
        model: dict[str, Any] | None = None,
    ) -> Calibration:
        """Fit on the statistics of normal images only; the threshold is their (1 - fpr) quantile.
        `bounded`: the model gives `nll` and `kl` (Family.bounds_likelihood). `model`:
        model_identity() of the model the statistics came from."""
        if not (isinstance(fpr, float) and 0.0 < fpr < 0.5):
            raise InputError(f"expected a false-positive rate between 0 and 0.5, got {fpr!r}")
        features = VAE_FEATURES if bounded else AE_FEATURES
        design = cls.design(stats, features)
        n = len(design)
        if n < 10 * len(features) or n * fpr < 5:
            raise InputError(
                f"expected at least {max(10 * len(features), math.ceil(5 / fpr))} normal images to calibrate "
                f"{len(features)} statistics at a false-positive rate of {fpr:g}, got {n}"
            )
        center = design.mean(axis=0)
        covariance = np.cov(design, rowvar=False) + 1e-6 * np.eye(len(features))
        calibration = cls(features, center, np.linalg.inv(covariance), 0.0, fpr, k, seed, n, source, model)
        threshold = float(np.quantile(calibration.anomaly(stats), 1.0 - fpr))
        return cls(features, center, calibration.precision, threshold, fpr, k, seed, n, source, model)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CALIBRATION_FORMAT,
            "method": METHOD,
            "features": list(self.features),
            "log_scale": sorted(set(self.features) & LOG_SCALE),
            "center": [float(v) for v in self.center],
            "precision": [[float(v) for v in row] for row in self.precision],
            "threshold": self.threshold,
            "fpr": self.fpr,
            "k": self.k,
            "seed": self.seed,
            "images": self.images,
            "source": self.source,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str, error: type[VaeportError] = ModelFolderError) -> Calibration:
        """A calibration record read back, every field checked (one line naming the first that is
        missing or wrong, raised as `error`)."""

        def fail(reason: str) -> VaeportError:
            return error(f"{where}: expected a {CALIBRATION_FORMAT} record, {reason}")

        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise fail("got another kind of file")
        for key in ("features", "center", "precision", "threshold", "fpr", "k", "seed", "images", "source"):
            if key not in data:
                raise fail(f"got one without the field '{key}'")
        features = data["features"]
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise fail(f"got 'features' {features!r} (expected a list of statistic names)")
        unknown = sorted(set(features) - set(STATISTICS))
        if unknown:
            raise fail(f"got unknown statistics {unknown} in 'features'")
        try:
            center = np.asarray(data["center"], dtype=np.float64)
            precision = np.asarray(data["precision"], dtype=np.float64)
        except (TypeError, ValueError):
            raise fail("got 'center' or 'precision' that are not numbers") from None
        if center.shape != (len(features),) or not np.isfinite(center).all():
            raise fail(f"got 'center' that is not {len(features)} finite numbers")
        if precision.shape != (len(features), len(features)) or not np.isfinite(precision).all():
            raise fail(f"got 'precision' that is not a {len(features)}x{len(features)} matrix of finite numbers")
        numbers = {key: data[key] for key in ("threshold", "fpr")}
        for key, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise fail(f"got '{key}' {value!r} (expected a finite number)")
        if not 0 < numbers["fpr"] < 0.5:
            raise fail(f"got 'fpr' {numbers['fpr']!r} (expected a rate between 0 and 0.5)")
        for key in ("k", "seed", "images"):
            value = data[key]
            if type(value) is not int or value < (0 if key == "seed" else 1):
                sign = "non-negative" if key == "seed" else "positive"
                raise fail(f"got '{key}' {value!r} (expected a {sign} integer)")
        model = data.get("model")
        if model is not None and not isinstance(model, dict):
            raise fail(f"got 'model' {model!r} (expected the record of the model it was fitted for)")
        return cls(tuple(features), center, precision, float(numbers["threshold"]), float(numbers["fpr"]), data["k"],
                   data["seed"], data["images"], str(data["source"]), model)  # fmt: skip


def model_identity(manifest: Any) -> dict[str, Any]:
    """What a calibration must have been fitted for: the model's family, prior, shapes, classes and
    the sha256 of its fp32 graphs (the weights themselves: another training run is another model)."""
    return {
        "kind": manifest.kind,
        "prior": manifest.prior,
        "image_shape": list(manifest.image_shape),
        "latent_dim": manifest.latent_dim,
        "classes": None if manifest.classes is None else list(manifest.classes),
        "graphs_sha256": {
            role: manifest.file_spec(manifest.graph_file("fp32", role))["sha256"] for role in manifest.roles
        },
    }


def class_prior(vae: Any) -> np.ndarray:
    """log p(y) of a conditional model: its training class frequencies (uniform if unrecorded)."""
    counts = vae.manifest.class_counts
    k = len(vae.classes)
    if counts is None or sum(counts) == 0:
        return np.full(k, -math.log(k))
    freq = np.asarray(counts, dtype=np.float64) / float(sum(counts))
    with np.errstate(divide="ignore"):
        return np.log(freq)


def marginal_statistics(vae: Any, x: np.ndarray, k: int, seed: int) -> dict[str, np.ndarray]:
    """A conditional model's statistics of unlabelled images: `nll` of the marginal p(x) over the
    classes, the rest (and `label`) of the most probable class (the lowest reconstruction NLL for a
    plain autoencoder, which has no likelihood bound)."""
    if vae.kind == "vqvae":
        return code_marginal_statistics(vae, x)
    of_images = image_statistics(x)
    per_class = [
        statistics(vae, x, k, seed, np.full(len(x), c, dtype=np.int64), of_images) for c in range(len(vae.classes))
    ]
    if vae.manifest.family.bounds_likelihood:
        joint = class_prior(vae)[:, None] - np.stack([s["nll"] for s in per_class])  # [K, B] log p(x, y)
        best = joint.argmax(axis=0)
        nll = -(joint.max(axis=0) + np.log(np.exp(joint - joint.max(axis=0)).sum(axis=0)))
    else:
        best = np.stack([s["recon"] for s in per_class]).argmin(axis=0)
        nll = np.full(len(x), np.nan)
    rows = np.arange(len(x))
    out = {name: np.stack([s[name] for s in per_class])[best, rows] for name in STATISTICS}
    out["nll"] = nll
    out["bits_per_dim"] = nll / (int(np.prod(x.shape[1:])) * math.log(2))
    out["label"] = best.astype(np.int64)
    return out


def score(
    vae: Any,
    images: np.ndarray,
    k: int,
    seed: int,
    calibration: Calibration | None,
    labels: np.ndarray | None = None,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """FIELDS for every image of `images` [N,C,H,W] float32 (with its label on a conditional
    model), in batches (memory stays flat in N: the results are allocated once, a batch decodes
    at most MAX_DECODE images)."""
    n = len(images)
    batch = batch_size or max(1, MAX_DECODE // max(k, 1))
    marginal = getattr(vae, "conditional", False) and labels is None
    names = (*STATISTICS, "label") if marginal else STATISTICS
    out = {name: np.empty(n, dtype=np.int64 if name == "label" else np.float64) for name in names}
    for start in range(0, n, batch):
        x = unit_images(images[start : start + batch])
        if marginal:
            stats = marginal_statistics(vae, x, k, seed)
        else:
            stats = statistics(vae, x, k, seed, None if labels is None else labels[start : start + batch])
        for name in names:
            out[name][start : start + batch] = stats[name]
    if calibration is None:
        out["anomaly"] = np.full(n, np.nan)
        out["flagged"] = None  # unknown, not "normal": nothing to compare the anomaly with
    else:
        out["anomaly"] = calibration.anomaly(out)
        out["flagged"] = out["anomaly"] > calibration.threshold
    return out
