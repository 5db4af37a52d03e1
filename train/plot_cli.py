"""`vae-plot`: the pictures that explain a VAE, for run folders (torch) or model folders (ONNX)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from vaeport.runtime.atomic import atomic_write, ensure_folder
from vaeport.runtime.cli_support import OneLineErrors
from vaeport.runtime.errors import InputError, require_module
from vaeport.runtime.files import MANIFEST_FILE


class TorchModel:
    """A trained torch VAE behind the numpy surface of vaeport.runtime.VAE (for plotting)."""

    def __init__(self, model: Any) -> None:
        from vaeport.train.torch_eval import torch_backend

        self.model = model.eval()
        self.backend = torch_backend(model)  # the torch side of vae-eval: encode, decode_mean, prior
        self.prior = self.backend.prior
        self.latent_dim = model.config.latent_dim
        self.image_shape = model.config.image_shape
        self.variational = model.variational
        self.classes = model.config.classes or None
        self.conditional = model.conditional

    def encode(self, x: np.ndarray, label: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        return self.backend.encode(x, label)

    def decode(self, z: np.ndarray, label: np.ndarray | None = None) -> np.ndarray:
        return self.backend.decode_mean(np.asarray(z, dtype=np.float32), label)


def with_prior(name: str, model: Any) -> str:
    """A panel's title: the model's kind, and its prior when it is a learned one."""
    return name if model.prior.name == "normal" else f"{name}, {model.prior.name} prior"


def open_model(path: Path) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """(model, {dataset, seed, data_dir}, history) for a model folder or a run folder."""
    if (path / MANIFEST_FILE).is_file():
        from vaeport.runtime import VAE

        vae = VAE.load(path, device="cpu")
        training = vae.manifest.training
        info = {k: training.get(k) for k in ("dataset", "seed", "data_dir", "image_size")}
        return vae, info, training.get("curves", [])
    require_module("torch", "train", "vae-plot on a run folder")
    from vaeport.train.load import load_run

    model, cfg, record = load_run(path)
    if cfg.kind == "vqvae":
        raise InputError(f"{path}: vae-plot draws a VQ-VAE from its model folder: vae-export it first, then plot that")
    info = {"dataset": cfg.dataset, "seed": cfg.seed, "data_dir": cfg.data_dir, "image_size": cfg.image_size}
    return TorchModel(model), info, record["history"]


def vq_pictures(
    model: Any, beside: tuple[Path, ...], test: np.ndarray, history: list[dict[str, Any]], out: Path, prefix: str
) -> list[Path]:
    """A VQ-VAE's pictures: its samples (a class grid, or a grid of unconditional samples), its
    reconstructions beside those of the `beside` models, its two training stages."""
    from vaeport.runtime import VAE
    from vaeport.runtime.png import grid
    from vaeport.train import plots

    models: dict[str, Any] = {}
    for folder in beside:
        if not (folder / MANIFEST_FILE).is_file():
            raise InputError(f"--beside: expected a model folder (with {MANIFEST_FILE}), got {folder}")
        other = VAE.load(folder, device="cpu")
        if tuple(other.image_shape) != tuple(model.image_shape):
            raise InputError(f"--beside: expected a model of image shape {model.image_shape}, got {other.image_shape}")
        models[folder.name] = other
    models["VQ-VAE"] = model
    ensure_folder(out)
    if model.conditional:
        samples = plots.vq_class_grid(model)
    else:
        import matplotlib.pyplot as plt

        samples, ax = plt.subplots(figsize=(6, 6))
        plots.show(ax, grid(model.sample(64, seed=0)), "VQ-VAE: 64 samples of the prior")
    written = [
        save(samples, out / f"{prefix}vq_samples.png"),
        save(plots.reconstruction_rows(models, test), out / f"{prefix}vq_reconstructions.png"),
    ]
    if history:
        written.append(save(plots.vq_training_curves(history), out / f"{prefix}vq_training_curves.png"))
    return written


INDEPENDENCE_IMAGES = 10_000  # the correlation picture's test images: all of Fashion-MNIST's, as vae-eval


def independence(model: Any, images: np.ndarray) -> float | None:
    """The total correlation of q(z) over `images` (vae-eval's estimator and noise: the same number
    vae-eval gives on the same images), None for an autoencoder."""
    from vaeport.runtime.evaluate import TC_SAMPLES, TC_STREAM
    from vaeport.runtime.independence import aggregate_total_correlation
    from vaeport.runtime.sampling import image_noise

    mean, log_var = model.encode(images)
    if log_var is None:
        return None
    eps = image_noise(0, 0, len(mean), 1, mean.shape[1])[0]
    return aggregate_total_correlation(mean, log_var, eps, TC_SAMPLES, seed=[0, TC_STREAM])


def save(fig: Any, path: Path) -> Path:
    """Write a figure as PNG to a temporary name beside `path`, then rename."""
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


@click.command(
    cls=OneLineErrors,
    epilog="Example: vae-plot models/fashion-mnist --compare models/fashion-mnist-ae "
    "--manifold models/fashion-mnist-2d --conditional models/fashion-mnist-cvae --out docs/",
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="A plain autoencoder (run or model folder) to draw beside PATH.",
)
@click.option(
    "--manifold",
    "manifold_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A model with latent_dim 2 for the manifold grid.",
)
@click.option(
    "--conditional",
    "conditional_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A conditional model for the class grid (conditional.png: the same z per row, a class per column).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the PNGs.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option(
    "--points",
    type=click.IntRange(min=10),
    default=5000,
    show_default=True,
    help="Test images in the latent-space scatter.",
)
@click.option(
    "--traverse",
    is_flag=True,
    help="Also draw traversals.png (each active latent dimension, most informative first, swept over [-3, 3] "
    "from one test image's code) and latent_correlation.png (the correlation of the posterior means and the "
    "total correlation of q(z)).",
)
@click.option(
    "--base-image",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="--traverse: which test image's code the sweeps start from.",
)
@click.option(
    "--beside",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A VQ-VAE at PATH: model folders whose reconstructions are drawn beside its own (repeatable).",
)
@click.option("--prefix", default="", help="Prefix of the file names.")
def main(
    path: Path,
    compare: Path | None,
    manifold_path: Path | None,
    conditional_path: Path | None,
    out: Path,
    data_dir: Path | None,
    points: int,
    traverse: bool,
    base_image: int,
    beside: tuple[Path, ...],
    prefix: str,
) -> None:
    """Draw latent spaces, random decodes, reconstructions, interpolations, traversals, manifold and curves."""
    require_module("matplotlib", "train", "vae-plot")
    from vaeport.runtime.inputs import unit_images
    from vaeport.train import plots
    from vaeport.train.evaluation import load_test_data

    model, info, history = open_model(path)
    if getattr(model, "kind", None) == "vqvae":
        data = load_test_data(info["dataset"], data_dir or info["data_dir"], info["image_size"], info["seed"] or 0)
        for file in vq_pictures(model, beside, unit_images(data.test[:16]), history, out, prefix):
            click.echo(f"wrote {file}")
        return
    if beside:
        raise InputError(f"--beside: expected a VQ-VAE model folder at PATH, got {path}")
    if getattr(model, "conditional", False):
        raise InputError(
            f"{path}: expected an unconditional model (draw a conditional one with --conditional), got one with classes"
        )
    data = load_test_data(info["dataset"], data_dir or info["data_dir"], info["image_size"], info["seed"] or 0)
    if data.factors is not None:  # a factor grid's test split is in grid order: any prefix is one corner of it
        order = np.random.default_rng(0).permutation(len(data.test))
        labels = None if data.test_labels is None else data.test_labels[order]
        data = replace(data, test=data.test[order], test_labels=labels)
    test = unit_images(data.test[: max(points, 16)])
    if traverse and base_image >= len(test):
        raise InputError(
            f"--base-image: expected an index in 0..{len(test) - 1} (the test images drawn), got {base_image}"
        )
    images, labels = test[:points], None if data.test_labels is None else data.test_labels[:points]
    models = {with_prior("VAE" if model.variational else "AE", model): model}
    if compare is not None:
        other, _, _ = open_model(compare)
        if tuple(other.image_shape) != tuple(model.image_shape):
            raise InputError(f"--compare: expected a model of image shape {model.image_shape}, got {other.image_shape}")
        if not other.variational:
            name = "plain autoencoder"
        elif other.prior.name != model.prior.name:
            name = f"VAE, {'N(0, I)' if other.prior.name == 'normal' else other.prior.name} prior"
        else:
            name = "compared VAE"
        models = {name: other, **models}
    flat = None
    if manifold_path is not None:
        flat, _, _ = open_model(manifold_path)
        if flat.latent_dim != 2:
            raise InputError(f"--manifold: expected a model with latent_dim 2, got {flat.latent_dim}")
    labelled = None
    if conditional_path is not None:
        labelled, _, _ = open_model(conditional_path)
        if not getattr(labelled, "conditional", False):
            raise InputError(
                f"--conditional: expected a model with classes, got an unconditional one ({conditional_path})"
            )
    ensure_folder(out)
    written = [
        save(plots.latent_spaces(models, images, labels), out / f"{prefix}latent_spaces.png"),
        save(plots.random_decodes(models, images), out / f"{prefix}random_decodes.png"),
        save(plots.reconstructions(model, test), out / f"{prefix}reconstructions.png"),
        save(plots.interpolations(model, test, [(0, 1), (2, 3)]), out / f"{prefix}interpolations.png"),
    ]
    if traverse:
        written.append(save(plots.traversals(model, test, base_image), out / f"{prefix}traversals.png"))
        everything = unit_images(data.test[:INDEPENDENCE_IMAGES])
        picture = plots.correlation_picture(model, everything, independence(model, everything))
        written.append(save(picture, out / f"{prefix}latent_correlation.png"))
    if history:
        written.append(save(plots.training_curves(history), out / f"{prefix}training_curves.png"))
    if flat is not None:
        written.append(save(plots.manifold(flat), out / f"{prefix}manifold.png"))
    if labelled is not None:
        written.append(save(plots.class_grid(labelled), out / f"{prefix}conditional.png"))
    for file in written:
        click.echo(f"wrote {file}")
