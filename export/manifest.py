"""Build vae.json, the manifest the runtime reads (format documented in docs/model-format.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from vaeport.export.graphs import io_specs
from vaeport.export.targets import Target
from vaeport.runtime.files import FORMAT_NAME, FORMAT_VERSION, LEARNED_PRIOR_FORMAT_VERSION, VQ_FORMAT_VERSION
from vaeport.runtime.hashing import sha256_bytes
from vaeport.train.config import TrainConfig
from vaeport.train.datasets import portable_dataset
from vaeport.train.run_folder import package_versions
from vaeport.train.vae import VAE
from vaeport.train.vqvae import VQVAE

# per epoch in the manifest's training curves ("stage": a VQ-VAE's autoencoder or prior)
CURVE_KEYS = ("epoch", "stage", "train_recon", "train_kl", "test_recon", "test_kl", "test_neg_elbo")


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256_bytes(data), "bytes": len(data), **io_specs(onnx.load_from_string(data))}


def parameter_count(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def build_manifest(
    name: str,
    model: VAE,
    cfg: TrainConfig,
    record: dict[str, Any],
    target: Target,
    opset: int,
    files: dict[str, bytes],
    graphs: dict[str, dict[str, str]],
    parity: dict[str, Any],
    class_counts: Any = None,
) -> dict[str, Any]:
    """The manifest for `files` (file name -> bytes) grouped into `graphs` (variant -> role -> file);
    `class_counts`: a conditional model's training images per class."""
    c, h, w = model.config.image_shape
    history = record.get("history") or []
    scale = model.scale()
    return {
        "format": FORMAT_NAME,
        "format_version": format_version(model),
        "name": name,
        "image": {"channels": c, "height": h, "width": w, "dtype": "float32", "value_range": [0.0, 1.0]},
        "model": {
            "kind": model.config.kind,
            "prior": model.config.prior,
            "latent_dim": model.config.latent_dim,
            "likelihood": model.config.likelihood,
            "gaussian_scale": None if scale is None else float(scale.detach()),
            "beta": cfg.beta,
            "architecture": {
                "arch": model.config.arch,
                "hidden": list(model.config.hidden),
                "activation": model.config.activation,
                "depth": model.config.depth,
                **parameter_counts(model),
                **prior_architecture(model),
            },
            **codes_section(model),
        },
        "classes": list(model.config.classes) if model.conditional else None,
        "class_counts": None if class_counts is None else [int(c) for c in class_counts],
        "inputs": {role: io_specs(onnx.load_from_string(files[f]))["inputs"] for role, f in graphs["fp32"].items()},
        "opset": opset,
        "target": {
            "name": target.name,
            "opset": opset,
            "ir_version": onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)]),
            "forms": target.forms if opset == target.opset else f"torch.onnx's opset-{opset} graphs",
            "oldest_onnxruntime_tested": target.oldest_onnxruntime_tested if opset == target.opset else None,
        },
        "graphs": graphs,
        "files": {file: file_entry(data) for file, data in sorted(files.items())},
        "parity": parity,
        "versions": package_versions("vaeport", "torch", "onnx", "onnxscript", "onnxruntime", "numpy"),
        "training": training_section(cfg, record, (c, h, w), history),
    }


def format_version(model: VAE) -> int:
    """The lowest format version that describes the model (older runtimes refuse what they cannot run)."""
    if model.config.kind == "vqvae":
        return VQ_FORMAT_VERSION
    return FORMAT_VERSION if model.config.prior == "normal" else LEARNED_PRIOR_FORMAT_VERSION


def parameter_counts(model: Any) -> dict[str, int]:
    if isinstance(model, VQVAE):
        return {
            "encoder_parameters": parameter_count(model.autoencoder.encoder),
            "decoder_parameters": parameter_count(model.autoencoder.decoder),
        }
    return {"encoder_parameters": parameter_count(model.encoder), "decoder_parameters": parameter_count(model.decoder)}


def codes_section(model: Any) -> dict[str, Any]:
    """A VQ-VAE's code grid, codebook size and its prior's key/value buffer shape (what its graphs'
    I/O is checked against), else nothing."""
    if not isinstance(model, VQVAE):
        return {}
    return {
        "code_grid": list(model.grid),
        "codebook_size": model.config.codebook_size,
        "prior_cache": list(model.prior.cache_shape),
    }


def prior_architecture(model: VAE) -> dict[str, Any]:
    """A learned prior's settings and size (nothing for N(0, I))."""
    if isinstance(model, VQVAE):
        c = model.config
        return {
            "prior": {"type": "causal transformer", "width": c.prior_width, "layers": c.prior_layers,
                      "heads": c.prior_heads},
            "prior_parameters": parameter_count(model.prior),
        }
    if model.config.prior == "normal":
        return {}
    return {
        "prior": {"layers": model.config.flow_layers, "hidden": model.config.flow_hidden},
        "prior_parameters": parameter_count(model.prior),
    }


def curve_value(row: dict[str, Any], key: str) -> Any:
    value = row[key]
    return round(value, 4) if isinstance(value, float) else value


def training_section(
    cfg: TrainConfig, record: dict[str, Any], image_shape: tuple[int, int, int], history: list[dict[str, Any]]
) -> dict[str, Any]:
    """How the model was trained: the whole TrainConfig (paths reduced to names: a model folder
    carries nothing machine-specific), the data set's size, the checkpoint and the curves."""
    config = cfg.to_dict()
    config["dataset"] = portable_dataset(cfg.dataset)
    config["data_dir"] = None
    if cfg.prior_of is not None:
        config["prior_of"] = Path(cfg.prior_of).name  # the source run's folder name
    data = record.get("data") or {}
    return {
        **config,
        "image_shape": list(image_shape),
        "train_images": data.get("train_images"),
        "test_images": data.get("test_images"),
        "split": data.get("split"),
        "epochs_trained": record.get("epochs_trained"),
        "test_neg_elbo": min((row["test_neg_elbo"] for row in history), default=None),
        "checkpoint": record.get("checkpoint"),  # a file name inside the run folder
        "curves": [{key: curve_value(row, key) for key in CURVE_KEYS if key in row} for row in history],
    }
