"""`VAE`: load a verified model folder and sample, encode, decode, reconstruct and interpolate.

numpy + onnxruntime only. One object may be shared by many threads: it holds no state that a
call changes, and ONNX Runtime sessions are safe to run concurrently.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.runtime.distributions import (
    DiagonalGaussian,
    FlowPrior,
    Posterior,
    Prior,
    check_temperature,
    make_prior,
)
from vaeport.runtime.errors import InputError, ModelFolderError
from vaeport.runtime.files import DECODER_INPUT, ENCODER_INPUT, LABEL_INPUT, VARIANTS
from vaeport.runtime.graph import Graph
from vaeport.runtime.inputs import as_images, as_latents, check_count, check_seed, fresh_seed
from vaeport.runtime.labels import as_labels
from vaeport.runtime.manifest import Manifest, check_folder_contents, check_graph_io, read_manifest, read_verified
from vaeport.runtime.sampling import posterior_noise, slerp
from vaeport.runtime.scoring import DEFAULT_K, Calibration
from vaeport.runtime.session import SessionSettings, cpu_workers

DEFAULT_BATCH = 256
PRIOR_BATCH_FACTOR = 16  # rows per call of a learned prior's graphs, in decoder batches
INTERPOLATIONS = ("slerp", "linear")
LABEL_TYPE = "tensor(int64)"
Label = Any  # a class name or index, or a list/array of one per image (conditional models)


def graph_io(graph: Graph) -> tuple[list[tuple[str, list[Any]]], list[tuple[str, list[Any]]]]:
    """The graph's own (inputs, outputs) as (name, shape) with "N" for every symbolic size."""

    def described(values: list[Any]) -> list[tuple[str, list[Any]]]:
        return [(v.name, [d if isinstance(d, int) else "N" for d in v.shape]) for v in values]

    return described(graph.session.get_inputs()), described(graph.session.get_outputs())


class VAE:
    """A loaded model folder. Create with `VAE.load(path)`."""

    def __init__(self, manifest: Manifest, graphs: dict[str, Graph], variant: str) -> None:
        self._manifest = manifest
        self._family = manifest.family
        self.graphs = graphs  # role -> Graph (runtime/families.py names the roles)
        self._encoder = graphs["encoder"]
        self._decoder = graphs["decoder"]
        self.variant = variant
        self.batch_size = self._decoder.batch_size
        self.device = self._decoder.device  # "cpu" or "cuda": what actually runs
        self._latent_dim, self._image_shape = manifest.latent_dim, manifest.image_shape
        self._classes = manifest.classes
        self._calibration = manifest.calibration()
        self.prior: Prior = make_prior(manifest.prior, manifest.latent_dim, graphs)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        threads: int | None = None,
        variant: str = "fp32",
        batch_size: int = DEFAULT_BATCH,
    ) -> VAE:
        """Verify the folder (format version, every sha256, external data, graph I/O against the
        manifest's shapes) and open one session per graph role of the model's family."""
        if variant not in VARIANTS:
            raise InputError(f"expected variant to be one of {', '.join(VARIANTS)}, got {variant!r}")
        check_count(batch_size, "batch_size")
        manifest = read_manifest(Path(path))
        check_folder_contents(manifest)
        wanted = {role: manifest.graph_file(variant, role) for role in manifest.roles}
        verified = {}
        for name in manifest.files:  # every file is hashed before anything is used
            data = read_verified(manifest, name)
            if name in wanted.values():
                verified[name] = data
        settings = SessionSettings(device=device, threads=threads)
        opened = {}
        for role, name in wanted.items():
            # Sessions are built from the very bytes that were hashed: no window to swap the file.
            # a prior's graphs map [N, D] to [N, D] or [N]: their batches can be far larger than the decoder's
            rows = batch_size if role in manifest.family.role_names else batch_size * PRIOR_BATCH_FACTOR
            serial = manifest.family.single_threaded(role)
            graph = Graph(verified[name], replace(settings, threads=1) if serial else settings, rows)
            check_graph_io(manifest, name, role, *graph_io(graph))
            check_label_type(manifest, name, graph)
            opened[role] = graph
        if manifest.kind == "vqvae":
            from vaeport.runtime.vqvae import VQVAE  # its module imports this one

            return VQVAE(manifest, opened, variant, workers=cpu_workers(threads))
        vae = cls(manifest, opened, variant)
        check_prior(vae)
        return vae

    # -- properties ----------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        """The model folder's manifest (typed properties; `.data` is the raw vae.json)."""
        return self._manifest

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self._image_shape

    @property
    def variational(self) -> bool:
        return self._family.variational

    @property
    def kind(self) -> str:
        """The model family (the manifest's model.kind): "vae", "ae" or "vqvae" (a `VQVAE`)."""
        return self._family.kind

    @property
    def classes(self) -> tuple[str, ...] | None:
        """A conditional model's class names, by label index; None for an unconditional model."""
        return self._classes

    @property
    def conditional(self) -> bool:
        """True when encode, decode and sample take a `label`."""
        return self._classes is not None

    def __repr__(self) -> str:
        classes = f", {len(self._classes)} classes" if self._classes is not None else ""
        return (
            f"VAE({self._manifest.name!r}, image {self.image_shape}, latent {self.latent_dim}{classes}, "
            f"{self.variant} on {self.device})"
        )

    # -- graphs --------------------------------------------------------------------------------
    def encode(self, x: Any, label: Label = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(z_mean, z_log_var), each [N, D]; for a plain autoencoder (z, None). A conditional
        model needs each image's `label`: one class (name or index) for all, or one per image."""
        images = as_images(x, self.image_shape)
        return self._encode(images, as_labels(label, len(images), self._classes))

    def posterior(self, x: Any, label: Label = None) -> Posterior:
        """q(z|x[,y]) as a distribution (runtime/distributions.py): a DiagonalGaussian for a VAE,
        a PointMass for the plain autoencoder; `.mode()`, `.sample(eps)`, `.log_prob(z)`, `.kl(prior)`."""
        images = as_images(x, self.image_shape)
        return self._posterior(images, as_labels(label, len(images), self._classes))

    def _posterior(self, images: np.ndarray, labels: np.ndarray | None) -> Posterior:
        """posterior for checked inputs."""
        feeds = {ENCODER_INPUT: images} if labels is None else {ENCODER_INPUT: images, LABEL_INPUT: labels}
        return self._family.to_posterior(self._encoder.run(feeds))

    def _encode(self, images: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """encode for checked inputs."""
        q = self._posterior(images, labels)
        return (q.mean, q.log_var) if isinstance(q, DiagonalGaussian) else (q.mode(), None)

    def decode(self, z: Any, label: Label = None) -> np.ndarray:
        """Images [N, C, H, W] in [0, 1] (Bernoulli: probabilities; Gaussian: means). Large inputs
        run in batches into one preallocated result: the call costs the result plus one batch. A
        conditional model needs the class to draw: `label` is one class (name or index) for all,
        or one per latent."""
        latents = as_latents(z, self._latent_dim)
        if self._classes is None and label is None:  # the hot path of single-image decodes
            return self._decoder.run({DECODER_INPUT: latents})[0]
        labels = as_labels(label, len(latents), self._classes)
        return self._decoder.run({DECODER_INPUT: latents, LABEL_INPUT: labels})[0]

    # -- scores --------------------------------------------------------------------------------
    @property
    def calibration(self) -> Calibration | None:
        """The default anomaly score's calibration from the model folder (None when it has none)."""
        return self._calibration

    def score(
        self,
        x: Any,
        k: int = DEFAULT_K,
        seed: int = 0,
        calibration: Calibration | None = None,
        label: Label = None,
    ) -> dict[str, np.ndarray]:
        """Per-image scores, one entry per image in every array: `nll` (IWAE-k bound on -log p(x),
        nats), `bits_per_dim`, `recon`, `kl`, `mse`, `complexity`, `sharpness`, `sharpness_gap`,
        `residual_peak`, `brightness`, `anomaly` (higher = more anomalous) and `flagged` (anomaly
        above the calibration's threshold). `calibration` replaces the model folder's (e.g. one
        fitted with `vae-score --fit` on your normal data; it must have been fitted for this model
        at this `k`, else InputError). Without a calibration that applies, `anomaly` is NaN,
        `flagged` is None (unknown, not "normal") and a NoCalibrationWarning says why.
        An image's scores do not depend on the other images, their order or the batch size.

        A conditional model scores each image given its `label` when one is passed (then the
        folder's calibration, fitted on unlabelled images, is not applied: pass `calibration` for
        an anomaly score), or else marginally over the classes (`nll` of p(x), the rest of the
        most probable class, which is returned as `label`)."""
        from vaeport.runtime.evaluate import check_k
        from vaeport.runtime.scoring import choose_calibration, model_identity, score

        images = as_images(x, self.image_shape)
        labels = None if label is None else as_labels(label, len(images), self._classes)
        k = check_k(k)
        seed = check_seed(seed)
        used = choose_calibration(self._calibration, calibration, model_identity(self._manifest), k, labels is not None)
        return score(self, images, k, seed, used, labels)

    # -- sampling ------------------------------------------------------------------------------
    def sample_latent(self, n: int, seed: int | None = None, temperature: float = 1.0, start: int = 0) -> np.ndarray:
        """n latents from the model's prior (N(0, temperature^2 I) for the normal prior), [n, D]:
        samples start..start+n-1 of the seeded stream, so sample i depends only on (seed, i)."""
        n = check_count(n)
        seed = fresh_seed() if seed is None else check_seed(seed)
        temperature = check_temperature(temperature)
        start = check_seed(start, "start")
        return self.prior.sample(self.prior.noise(seed, start, n), temperature)

    def sample(self, n: int, seed: int | None = None, temperature: float = 1.0, label: Label = None) -> np.ndarray:
        """n decoded prior samples, [n, C, H, W]; a conditional model draws the given class
        (`label`: one name or index, or one per sample). The latents do not depend on the label:
        the same seed with another class gives the same styles in that class."""
        n = check_count(n)
        labels = as_labels(label, n, self._classes)
        return self.decode(self.sample_latent(n, seed, temperature), labels)

    def reconstruct(self, x: Any, seed: int | None = None, label: Label = None) -> np.ndarray:
        """Decode the posterior mean (seed=None) or one seeded posterior sample per image (with
        each image's `label` on a conditional model)."""
        seed = None if seed is None else check_seed(seed)
        images = as_images(x, self.image_shape)
        labels = as_labels(label, len(images), self._classes)
        q = self._posterior(images, labels)
        if seed is None:
            return self.decode(q.mode(), labels)
        return self.decode(q.sample(posterior_noise(seed, q.mode().shape)), labels)

    def interpolate(self, a: Any, b: Any, steps: int = 8, method: str = "slerp", label: Label = None) -> np.ndarray:
        """Decoded frames from a to b ([steps, C, H, W]); a and b are images (through their
        latent means) or latents of shape [D]. The path runs in the prior's noise space (the
        latents themselves for N(0, I), f^-1(z) for a learned flow prior) and is mapped back. A
        conditional model encodes and decodes with one class, `label` (a name or an index)."""
        steps = check_count(steps, "steps")
        if isinstance(label, (list, tuple, np.ndarray)):
            raise InputError(f"expected label to be one class for the whole interpolation, got {label!r}")
        as_labels(label, 1, self._classes)
        if method not in INTERPOLATIONS:
            raise InputError(f"expected method to be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
        za, zb = self._to_latent(a, "a", label), self._to_latent(b, "b", label)
        # Through the prior's noise space: for N(0, I) the latents themselves; for a learned prior
        # f^-1(z), so that the path keeps to where the prior has mass.
        ua, ub = self.prior.inverse(np.stack([za, zb])).astype(np.float64)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float64)
        path = (1 - t)[:, None] * ua + t[:, None] * ub if method == "linear" else slerp(ua, ub, t)
        return self.decode(self.prior.sample(path.astype(np.float32)), label)

    def _to_latent(self, value: Any, name: str, label: Label) -> np.ndarray:
        array = np.asarray(value)
        if array.ndim == 1 or (array.ndim == 2 and array.shape == (1, self.latent_dim)):
            return as_latents(array, self.latent_dim, name)[0]
        images = as_images(array, self.image_shape, name)
        if len(images) != 1:
            raise InputError(f"expected {name} to be one image or one latent, got {len(images)} images")
        return self.encode(images, label)[0][0]


def check_prior(vae: VAE) -> None:
    """A learned prior's two graphs must be one flow: prior_log_prob the density of what
    prior_sample draws (a graph swapped by hand is refused here, naming both)."""
    if isinstance(vae.prior, FlowPrior):
        gap = vae.prior.consistency_gap()
        tolerance = FlowPrior.FD_TOLERANCE * (1 if vae.variant == "fp32" else 20)  # fp16/int8 differentiate coarsely
        roundtrip = vae.prior.roundtrip_gap()
        if not roundtrip <= tolerance:
            pair = ", ".join(vae.manifest.graph_file(vae.variant, r) for r in ("prior_sample", "prior_inverse"))
            raise ModelFolderError(
                f"{vae.manifest.folder}: expected {pair} to be inverses, got |f^-1(f(eps)) - eps| up to {roundtrip:.3g}"
            )
        if not gap <= tolerance:
            files = ", ".join(vae.manifest.graph_file(vae.variant, r) for r in ("prior_sample", "prior_log_prob"))
            raise ModelFolderError(
                f"{vae.manifest.folder}: expected {files} to be one flow (log p(f(eps)) = log N(eps) - log|det J|), "
                f"got a gap of {gap:.3g} nats (tolerance {tolerance:g})"
            )


def check_label_type(manifest: Manifest, name: str, graph: Graph) -> None:
    """A conditional graph's label input must take int64 class indices (what the runtime feeds)."""
    for value in graph.session.get_inputs():
        if value.name == LABEL_INPUT and value.type != LABEL_TYPE:
            raise ModelFolderError(
                f"{manifest.folder / name}: expected input {LABEL_INPUT} of type {LABEL_TYPE}, got {value.type}"
            )
