"""`VAE`: load a verified model folder and sample, encode, decode, reconstruct and interpolate.

numpy + onnxruntime only. One object may be shared by many threads: it holds no state that a
call changes, and ONNX Runtime sessions are safe to run concurrently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vaeport.runtime.errors import InputError, ModelFolderError
from vaeport.runtime.files import DECODER_INPUT, ENCODER_INPUT
from vaeport.runtime.graph_runner import GraphRunner
from vaeport.runtime.inputs import as_images, as_latents, check_count
from vaeport.runtime.manifest import VARIANTS, Manifest, check_folder_contents, read_manifest, read_verified
from vaeport.runtime.sampling import posterior_noise, prior_latents, reparameterize, slerp
from vaeport.runtime.session import SessionSettings

DEFAULT_BATCH = 256
INTERPOLATIONS = ("slerp", "linear")


def check_io(session: Any, spec: dict[str, Any], name: str) -> None:
    """The graph's own input/output names, ranks and fixed sizes must match the manifest."""

    def described(pairs: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
        return [(name, [d if isinstance(d, int) else "N" for d in shape]) for name, shape in pairs]

    got = tuple(
        described([(v.name, v.shape) for v in values]) for values in (session.get_inputs(), session.get_outputs())
    )
    want = tuple(described([(v["name"], v["shape"]) for v in spec[key]]) for key in ("inputs", "outputs"))
    if got != want:
        raise ModelFolderError(f"{name}: expected inputs/outputs {want} as listed in the manifest, got {got}")


class VAE:
    """A loaded model folder. Create with `VAE.load(path)`."""

    def __init__(self, manifest: Manifest, encoder: GraphRunner, decoder: GraphRunner, variant: str) -> None:
        self._manifest = manifest
        self._encoder = encoder
        self._decoder = decoder
        self.variant = variant
        self.batch_size = decoder.batch_size
        self.device = decoder.device  # "cpu" or "cuda": what actually runs
        self._latent_dim, self._image_shape = manifest.latent_dim, manifest.image_shape

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        threads: int | None = None,
        variant: str = "fp32",
        batch_size: int = DEFAULT_BATCH,
    ) -> VAE:
        """Verify the folder (format version, every sha256, external data, graph I/O) and open sessions."""
        if variant not in VARIANTS:
            raise InputError(f"expected variant to be one of {', '.join(VARIANTS)}, got {variant!r}")
        check_count(batch_size, "batch_size")
        manifest = read_manifest(Path(path))
        check_folder_contents(manifest)
        wanted = {part: manifest.graph_file(variant, part) for part in ("encoder", "decoder")}
        graphs = {}
        for name in manifest.data["files"]:  # every file is hashed before anything is used
            data = read_verified(manifest, name)
            if name in wanted.values():
                graphs[name] = data
        settings = SessionSettings(device=device, threads=threads)
        runners = []
        for name, input_name in zip(wanted.values(), (ENCODER_INPUT, DECODER_INPUT), strict=True):
            # Sessions are built from the very bytes that were hashed: no window to swap the file.
            runner = GraphRunner(graphs[name], settings, input_name, batch_size)
            check_io(runner.session, manifest.file_spec(name), name)
            runners.append(runner)
        return cls(manifest, runners[0], runners[1], variant)

    # -- properties ----------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest.data

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self._image_shape

    @property
    def variational(self) -> bool:
        return self._manifest.kind == "vae"

    def __repr__(self) -> str:
        return (
            f"VAE({self.manifest.get('name')!r}, image {self.image_shape}, latent {self.latent_dim}, "
            f"{self.variant} on {self.device})"
        )

    # -- graphs --------------------------------------------------------------------------------
    def encode(self, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(z_mean, z_log_var), each [N, D]; for a plain autoencoder (z, None)."""
        outputs = self._encoder.run(as_images(x, self.image_shape))
        return (outputs[0], outputs[1]) if self.variational else (outputs[0], None)

    def decode(self, z: Any) -> np.ndarray:
        """Images [N, C, H, W] in [0, 1] (Bernoulli: probabilities; Gaussian: means)."""
        return self._decoder.run(as_latents(z, self._latent_dim))[0]

    # -- sampling ------------------------------------------------------------------------------
    def sample_latent(self, n: int, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """n latents z ~ N(0, temperature^2 I), [n, D]; the same seed gives the same latents."""
        n = check_count(n)
        if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature >= 0):
            raise InputError(f"expected temperature to be a finite number >= 0, got {temperature!r}")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        return prior_latents(seed, 0, n, self.latent_dim, float(temperature))

    def sample(self, n: int, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """n decoded prior samples, [n, C, H, W]."""
        return self.decode(self.sample_latent(n, seed, temperature))

    def reconstruct(self, x: Any, seed: int | None = None) -> np.ndarray:
        """Decode the posterior mean (seed=None) or one seeded posterior sample per image."""
        mean, log_var = self.encode(x)
        if seed is None or log_var is None:
            return self.decode(mean)
        return self.decode(reparameterize(mean, log_var, posterior_noise(seed, mean.shape)))

    def interpolate(self, a: Any, b: Any, steps: int = 8, method: str = "slerp") -> np.ndarray:
        """Decoded frames from a to b ([steps, C, H, W]); a and b are images (through their
        latent means) or latents of shape [D]."""
        steps = check_count(steps, "steps")
        if method not in INTERPOLATIONS:
            raise InputError(f"expected method to be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
        za, zb = self._to_latent(a, "a"), self._to_latent(b, "b")
        t = np.linspace(0.0, 1.0, steps, dtype=np.float64)
        if method == "linear":
            path = (1 - t)[:, None] * za + t[:, None] * zb
        else:
            path = slerp(za.astype(np.float64), zb.astype(np.float64), t)
        return self.decode(path.astype(np.float32))

    def _to_latent(self, value: Any, name: str) -> np.ndarray:
        array = np.asarray(value)
        if array.ndim == 1 or (array.ndim == 2 and array.shape == (1, self.latent_dim)):
            return as_latents(array, self.latent_dim, name)[0]
        images = as_images(array, self.image_shape, name)
        if len(images) != 1:
            raise InputError(f"expected {name} to be one image or one latent, got {len(images)} images")
        return self.encode(images)[0][0]
