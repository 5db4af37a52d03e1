"""`evaluate`: test-set measures of a run folder (torch) or a model folder (ONNX Runtime, no torch),
and `save_eval`, which writes them to eval.json (the schema is in docs/model-format.md).

    report = evaluate("runs/fmnist", k=100)          # torch
    report = evaluate("models/fashion-mnist")        # numpy + onnxruntime only
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vaeport.runtime.atomic import atomic_write_text, ensure_folder
from vaeport.runtime.errors import InputError, require_module
from vaeport.runtime.evaluate import check_k
from vaeport.runtime.files import MANIFEST_FILE
from vaeport.runtime.inputs import check_seed
from vaeport.train.datasets import ImageData, load_dataset, portable_dataset
from vaeport.train.run_folder import EVAL_FILE, Run

EVAL_FORMAT = "vaeport-eval"
EVAL_VERSION = 1
BACKENDS = ("torch", "onnx")
PATH_SPECS = ("folder:", "npy:")


def is_model_folder(path: Path) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()


def load_test_data(
    spec: str, data_dir: Any, image_size: int | None, seed: int, skip_bad: bool = False, conditional: bool = True
) -> ImageData:
    """The data set a model is evaluated on, read as it was for training (the same unreadable
    images skipped); labels that cannot be used stop only a conditional model's evaluation."""
    try:
        return load_dataset(spec, data_dir, image_size, seed, skip_bad=skip_bad, strict_labels=conditional)
    except InputError as exc:
        if spec.startswith(PATH_SPECS):
            raise InputError(
                f"{exc} (a model folder records only the data set's folder name, not a path of the machine "
                "that trained it: pass --dataset folder:PATH or npy:PATH)"
            ) from exc
        raise


def evaluate(
    target: Run | str | Path,
    k: int = 100,
    seed: int = 0,
    *,
    checkpoint: str = "best",
    data_dir: str | Path | None = None,
    dataset: str | None = None,
    device: str = "auto",
    variant: str = "fp32",
    skip_bad_images: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    factors: bool = False,
    metric_sizes: Any = None,
) -> dict[str, Any]:
    """Negative ELBO with its parts, the IWAE-k bound (k=0 skips it), reconstruction MSE, active
    units and KL per dimension on the test split, in nats per image.

    `target` is a run folder (torch; `checkpoint` "best" or "last") or a model folder (ONNX
    Runtime; `device`, `variant`). Both share one estimator and per-image seeded noise, so a run
    folder and its export agree to float precision. `dataset` overrides the recorded data set;
    `skip_bad_images` (default: as the model was trained) leaves unreadable folder: images out.
    `progress(images, total)` is called after each batch as the test images are evaluated.
    A conditional model is evaluated with each test image's label: the bound is on -log p(x|y).
    factors=True adds MIG, FactorVAE and beta-VAE scores (train/disentanglement.py, drawn as
    `metric_sizes` says) for a model of a data set with ground-truth factors."""
    from vaeport.runtime.evaluate import evaluate as estimate

    if not isinstance(target, (Run, str, os.PathLike)):
        raise InputError(f"expected a run folder or a model folder path (str, Path or Run), got {target!r}")
    path = Path(target.path if isinstance(target, Run) else target)
    seed = check_seed(seed)
    k = check_k(k, minimum=0)
    started = time.perf_counter()
    if is_model_folder(path):
        backend, data, details = onnx_side(path, data_dir, dataset, device, variant, skip_bad_images)
    else:
        backend, data, details = torch_side(path, data_dir, dataset, checkpoint, skip_bad_images)
    result = {**details, "dataset": portable_dataset(data.name), "seed": seed}
    conditional = details.pop("conditional")
    vq = details.get("kind") == "vqvae"
    if factors:
        check_factors(data, conditional, vq)
    labels = data.test_labels if conditional else None
    step = None if progress is None else (lambda done: progress(done, len(data.test)))
    if vq:  # discrete codes: the bound with the prior over them (no importance sampling: the codes are exact)
        from vaeport.runtime.vq_evaluate import evaluate_codes

        result.update(evaluate_codes(backend, data.test, labels, progress=step))
    else:
        result.update(estimate(backend, data.test, k=k, seed=seed, labels=labels, progress=step))
    if factors:
        result["disentanglement"] = factor_metrics(backend, data, seed, metric_sizes)
    result["seconds"] = time.perf_counter() - started
    return result


def check_factors(data: ImageData, conditional: bool, vq: bool = False) -> None:
    """--factors needs a data set with ground-truth factors and codes that depend on the image alone."""
    if vq:
        raise InputError("--factors: expected a model with continuous latents (vae or ae), got a VQ-VAE's code grids")
    if data.factors is None:
        raise InputError(
            f"--factors: expected a model of a data set with ground-truth factors (dsprites), got one of {data.name}"
        )
    if conditional:
        raise InputError(
            "--factors: expected an unconditional model (its codes from the image alone), got a conditional one"
        )


def factor_metrics(backend: Any, data: ImageData, seed: int, sizes: Any) -> dict[str, Any]:
    """Disentanglement of the backend's posterior means on the data set's factor grid."""
    from vaeport.train.disentanglement import disentanglement, encoder_codes
    from vaeport.train.dsprites import FACTOR_GRIDS

    grid = FACTOR_GRIDS[data.factors]
    codes = encoder_codes(lambda x: backend.encode(x)[0], grid, data.image_shape[1])
    return disentanglement(codes, grid, seed, sizes)


def onnx_side(
    path: Path, data_dir: Any, dataset: str | None, device: str, variant: str, skip_bad: bool | None
) -> tuple[Any, ImageData, dict]:
    """numpy + onnxruntime (+ the data loaders), no torch."""
    from vaeport.runtime import VAE
    from vaeport.runtime.evaluate import onnx_backend

    vae = VAE.load(path, device=device, variant=variant)
    info, manifest = vae.manifest.training, vae.manifest
    data = load_test_data(
        dataset or info.get("dataset", "digits"),
        data_dir or info.get("data_dir"),
        info.get("image_size"),
        info.get("seed", 0),
        bool(info.get("skip_bad_images", False)) if skip_bad is None else skip_bad,
        vae.conditional,
    )
    if vae.kind == "vqvae":
        from vaeport.runtime.vq_evaluate import onnx_vq_backend

        backend: Any = onnx_vq_backend(vae)
    else:
        backend = onnx_backend(vae, manifest.likelihood, manifest.gaussian_scale)
    check_test_labels(data, vae.classes)
    details = {"backend": "onnx", "variant": vae.variant, "device": vae.device, "conditional": vae.conditional}
    return backend, data, {**details, "kind": vae.kind}


def torch_side(
    path: Path, data_dir: Any, dataset: str | None, checkpoint: str, skip_bad: bool | None
) -> tuple[Any, ImageData, dict]:
    require_module("torch", "train", "evaluating a run folder")
    from vaeport.train.load import load_run
    from vaeport.train.torch_eval import torch_backend, torch_vq_backend

    model, cfg, record = load_run(path, checkpoint)
    skip = cfg.skip_bad_images if skip_bad is None else skip_bad
    data = load_test_data(
        dataset or cfg.dataset, data_dir or cfg.data_dir, cfg.image_size, cfg.seed, skip, model.conditional
    )
    check_test_labels(data, model.config.classes or None)
    details = {"backend": "torch", "checkpoint": record["checkpoint"], "conditional": model.conditional}
    details["kind"] = model.config.kind
    backend = torch_vq_backend(model) if model.config.kind == "vqvae" else torch_backend(model)
    return backend, data, details


def check_test_labels(data: ImageData, classes: tuple[str, ...] | None) -> None:
    """A conditional model needs the test images' labels, from a data set with its classes."""
    if classes is None:
        return
    if data.test_labels is None:
        raise InputError(
            f"{data.name}: a conditional model is evaluated on labelled images, got a data set without labels"
        )
    if data.classes is not None and tuple(data.classes) != tuple(classes):
        raise InputError(
            f"{data.name}: expected the model's classes {list(classes)}, got a data set with {list(data.classes)}"
        )


def default_eval_path(target: Run | str | Path) -> Path:
    return Path(target.path if isinstance(target, Run) else target) / EVAL_FILE


def read_eval(path: Path) -> dict[str, Any]:
    """An eval.json as {"format", "format_version", "torch"?, "onnx"?}; files of vaeport 0.1 (one
    flat result, or {"torch", "onnx"}) are read into that form. Anything else is refused."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: expected a vaeport eval file, got an unreadable one ({exc})") from exc
    if isinstance(data, dict) and data.get("format") == EVAL_FORMAT:
        return data
    if isinstance(data, dict) and set(data) <= set(BACKENDS) and data:
        return {"format": EVAL_FORMAT, "format_version": EVAL_VERSION, **data}
    if isinstance(data, dict) and "path_kind" in data:
        key = "onnx" if "onnx" in data["path_kind"] else "torch"
        return {"format": EVAL_FORMAT, "format_version": EVAL_VERSION, key: data}
    raise InputError(f"{path}: expected a vaeport eval file, refusing to overwrite a file of another kind")


def save_eval(path: Path, report: dict[str, Any]) -> Path:
    """Write `report` into the eval file at `path` under its backend ("torch" or "onnx"), keeping
    the other backend's result if the file has one."""
    path = Path(path)
    ensure_folder(path.parent)
    record = read_eval(path) if path.exists() else {"format": EVAL_FORMAT, "format_version": EVAL_VERSION}
    record = {**record, "format_version": EVAL_VERSION, report["backend"]: report}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
