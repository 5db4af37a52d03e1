"""`VQVAE`: a loaded VQ-VAE model folder (model.kind "vqvae"); `VAE.load` returns one for such a
folder. Its latents are code grids [N, h, w] of int64 codebook indices:

    vq = VAE.load("models/fashion-mnist-vq")
    codes = vq.encode(x)                     # [N, h, w] int64
    x_hat = vq.decode(codes)                 # [N, C, H, W] in [0, 1]
    x = vq.sample(16, seed=0, label="Shirt") # the prior drawn position by position, then decoded
    s = vq.score(x)                          # nll = -log p(x|codes) - log p(codes), nats; the anomaly features

Sampling runs the `prior_step` graph h * w times per batch, every position drawn with a uniform of
the seeded stream (runtime/sampling.py's `prior_uniforms`: image i depends only on (seed, i)). A
class-conditional prior sampled without a label draws each image's class from the training
frequencies (the manifest's class_counts) with one more uniform of that image's row, so unlabelled
samples follow the data's class balance and stay reproducible per image.

`interpolate` and `posterior` are refused: code grids are discrete, and a path between two of them
through the codebook's vectors leaves the set of grids the prior has learned.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vaeport.runtime.distributions import check_temperature
from vaeport.runtime.errors import InputError
from vaeport.runtime.files import CODES, ENCODER_INPUT, LABEL_INPUT
from vaeport.runtime.inputs import as_images, check_count, check_seed, describe, fresh_seed
from vaeport.runtime.labels import as_labels
from vaeport.runtime.sampling import prior_uniforms
from vaeport.runtime.vae import VAE, Label
from vaeport.runtime.vq_sampling import CodeShape, draw_classes, sample_codes


class VQVAE(VAE):
    """A loaded VQ-VAE. Create with `VAE.load(path)`."""

    def __init__(self, *args: Any, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shapes = self._manifest.shapes
        self.code_shape = CodeShape(shapes.code_grid, shapes.codebook_size, shapes.prior_cache)
        self._prior_graph = self.graphs["prior"]
        self._step = self.graphs["prior_step"]
        # sampling runs row groups in parallel on CPU (each row's draws do not depend on the others)
        self._workers = max(1, workers) if self._step.device == "cpu" else 1

    @property
    def code_grid(self) -> tuple[int, int]:
        """(h, w) of a code grid."""
        return self.code_shape.grid

    @property
    def codebook_size(self) -> int:
        return self.code_shape.codebook_size

    def __repr__(self) -> str:
        classes = f", {len(self._classes)} classes" if self._classes is not None else ""
        h, w = self.code_grid
        return (
            f"VQVAE({self._manifest.name!r}, image {self.image_shape}, codes {h}x{w} of {self.codebook_size}{classes}, "
            f"{self.variant} on {self.device})"
        )

    # -- codes ---------------------------------------------------------------------------------
    def as_codes(self, codes: Any, name: str = "codes") -> np.ndarray:
        """[N, h, w] (or [h, w]) integer codes in [0, K) -> int64 [N, h, w]; else InputError."""
        array = np.asarray(codes)
        batch = array[None] if array.ndim == 2 else array
        h, w = self.code_grid
        expected = f"expected {name} of shape [N,{h},{w}] (or [{h},{w}]) as integers in [0, {self.codebook_size})"
        if batch.ndim != 3 or batch.shape[1:] != (h, w) or len(batch) == 0 or batch.dtype.kind not in "iu":
            raise InputError(f"{expected}, got {describe(array)}")
        low, high = int(batch.min()), int(batch.max())
        if low < 0 or high >= self.codebook_size:
            raise InputError(f"{expected}, got values in [{low}, {high}]")
        return np.ascontiguousarray(batch, dtype=np.int64)

    def encode(self, x: Any, label: Label = None) -> np.ndarray:  # type: ignore[override]
        """Each image's code grid [N, h, w] int64 (the encoder takes no label: only the prior does)."""
        self._no_label(label, "encoder")
        images = as_images(x, self.image_shape)
        return self._encoder.run({ENCODER_INPUT: images})[0]

    def decode(self, z: Any, label: Label = None) -> np.ndarray:
        """Images [N, C, H, W] in [0, 1] (Bernoulli means) of code grids [N, h, w]."""
        self._no_label(label, "decoder")
        return self._decoder.run({CODES: self.as_codes(z)})[0]

    def reconstruct(self, x: Any, seed: int | None = None, label: Label = None) -> np.ndarray:
        """decode(encode(x)): the codes are deterministic, so `seed` changes nothing."""
        return self.decode(self.encode(x, label))

    def _no_label(self, label: Label, graph: str) -> None:
        if label is not None:
            raise InputError(
                f"expected no label for a VQ-VAE's {graph} (only its prior is class-conditional), got {label!r}"
            )

    # -- the prior -----------------------------------------------------------------------------
    def prior_logits(self, codes: Any, label: Label = None) -> np.ndarray:
        """The prior's logits [N, h, w, K] at every position given the codes before it."""
        grids = self.as_codes(codes)
        feeds = {CODES: grids}
        labels = as_labels(label, len(grids), self._classes)
        if labels is not None:
            feeds[LABEL_INPUT] = labels
        return self._prior_graph.run(feeds)[0]

    def code_nll(self, codes: Any, label: Label = None) -> np.ndarray:
        """-log p(codes [| label]) per grid [N], nats (float64)."""
        grids = self.as_codes(codes)
        logits = self.prior_logits(grids, label).astype(np.float64)
        peak = logits.max(axis=-1, keepdims=True)
        log_norm = (peak + np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True)))[..., 0]
        chosen = np.take_along_axis(logits, grids[..., None], axis=-1)[..., 0]
        return (log_norm - chosen).reshape(len(grids), -1).sum(axis=1)

    def sample_latent(  # type: ignore[override]
        self, n: int, seed: int | None = None, temperature: float = 1.0, start: int = 0, label: Label = None
    ) -> np.ndarray:
        """n code grids [n, h, w] drawn from the prior: samples start..start+n-1 of the seeded
        stream (image i depends only on (seed, i)); a conditional prior draws the given class
        (`label`: one, or one per sample), or without one a class per image from the training
        frequencies. temperature scales the logits (0: the most probable code at each step)."""
        n = check_count(n)
        seed = fresh_seed() if seed is None else check_seed(seed)
        temperature = check_temperature(temperature)
        start = check_seed(start, "start")
        labels = None if label is None else as_labels(label, n, self._classes)
        uniforms = prior_uniforms(seed, start, n, self.code_shape.length + 1)  # column 0: the class, if drawn
        if self._classes is not None and labels is None:
            labels = draw_classes(uniforms[:, 0], self.class_weights())
        codes = np.empty((n, *self.code_grid), dtype=np.int64)
        step = min(self.batch_size, -(-n // self._workers))

        def fill(s: int) -> None:
            part = None if labels is None else labels[s : s + step]
            codes[s : s + step] = sample_codes(
                self._step_run, self.code_shape, uniforms[s : s + step, 1:], part, temperature
            )

        starts = range(0, n, step)
        if self._workers == 1 or len(starts) == 1:
            for s in starts:
                fill(s)
        else:
            with ThreadPoolExecutor(self._workers) as pool:
                list(pool.map(fill, starts))  # list(): re-raises a worker's exception here
        return codes

    def drawn_classes(self, n: int, seed: int, start: int = 0) -> np.ndarray:
        """The classes sample_latent draws for samples start..start+n-1 when given no label."""
        if self._classes is None:
            raise InputError("expected a class-conditional VQ-VAE, got an unconditional one (it draws no classes)")
        width = self.code_shape.length + 1
        uniforms = prior_uniforms(check_seed(seed), check_seed(start, "start"), check_count(n), width)
        return draw_classes(uniforms[:, 0], self.class_weights())

    def class_weights(self) -> tuple[int, ...]:
        """Training images per class (uniform when the folder does not record them)."""
        counts = self._manifest.class_counts
        if counts is None or sum(counts) == 0:
            return tuple(1 for _ in self._classes or ())
        return counts

    def _step_run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        # one session call per position, on the rows sample_latent hands this worker
        return self._step.session.run(self._step.outputs, feeds)

    def sample(self, n: int, seed: int | None = None, temperature: float = 1.0, label: Label = None) -> np.ndarray:
        """n decoded prior samples [n, C, H, W] (see sample_latent)."""
        return self.decode(self.sample_latent(n, seed, temperature, label=label))

    # -- scores --------------------------------------------------------------------------------
    # -- what a discrete latent does not have ----------------------------------------------------
    def posterior(self, x: Any, label: Label = None) -> Any:
        raise InputError("a VQ-VAE has no posterior distribution: its codes are deterministic (use encode)")

    def interpolate(self, a: Any, b: Any, steps: int = 8, method: str = "slerp", label: Label = None) -> np.ndarray:
        raise InputError(
            "interpolate is not defined for a VQ-VAE: its code grids are discrete, and a path through the "
            "codebook's vectors leaves the grids its prior has learned (decode your own code grids instead)"
        )
