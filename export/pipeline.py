"""`export`: run folder -> model folder. Export, check, gate, add variants, then move a complete
folder into place (docs/model-format.md).

    from vaeport.export import export
    folder = export("runs/fmnist", "models/fmnist", fp16=True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.export.feeds import Examples
from vaeport.export.graphs import check_graph, export_role
from vaeport.export.manifest import build_manifest
from vaeport.export.options import ExportOptions
from vaeport.export.parity import failures, model_examples, run_gate
from vaeport.export.targets import resolve_target
from vaeport.export.variants import fp16_parity, int8_parity, make_fp16, make_int8
from vaeport.runtime.atomic import atomic_folder, check_creatable, copy_into, ensure_folder, foreign_entries
from vaeport.runtime.errors import FileAccessError, InputError, ParityError
from vaeport.runtime.families import model_role_names
from vaeport.runtime.files import MANIFEST_FILE, graph_file
from vaeport.runtime.inputs import check_seed
from vaeport.runtime.manifest import LOADABLE_SUFFIXES, read_verified, verify_folder
from vaeport.train.datasets import ImageData, load_run_data
from vaeport.train.load import load_run
from vaeport.train.run_folder import Run
from vaeport.train.vae import VAE

Log = Callable[[str], None]


def check_destination(out: Path, force: bool) -> None:
    check_creatable(out.parent)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise FileAccessError(f"--out {out}: expected a folder path, got an existing file")
        if not force:
            raise InputError(f"--out {out}: expected a new folder, got an existing one (use --force to replace it)")
        if any(out.iterdir()) and not (out / MANIFEST_FILE).exists():
            raise InputError(f"--out {out}: refusing to replace something that is not a vaeport model folder")


def load_data(cfg: Any, data_dir: str | None, model: VAE | None = None) -> ImageData:
    """The run's data; for a conditional model, checked to have its labels and classes."""
    data = load_run_data(cfg, data_dir)
    if model is not None and model.conditional:
        if data.test_labels is None or data.train_labels is None:
            raise InputError(f"{data.name}: expected labels for a conditional model, got a data set without them")
        if tuple(data.classes or ()) != model.config.classes:
            raise InputError(
                f"{data.name}: expected the classes the model was trained on {list(model.config.classes)}, "
                f"got {list(data.classes or ())}"
            )
    return data


def test_examples(model: VAE, data: ImageData) -> Examples:
    """The test images (with labels, for a conditional model) the gate and the variants are checked on."""
    return model_examples(model, data.test, data.test_labels)


def export(
    run: Run | str | Path,
    out: str | Path,
    options: ExportOptions | None = None,
    *,
    log: Log | None = None,
    **settings: Any,
) -> Path:
    """Export every graph of a run folder's model (encoder and decoder for a VAE) to a verified
    model folder at `out`; returns `out`.

    Settings are ExportOptions' fields (export/options.py), given as `options` or as keywords
    (`fp16=True`, `target="legacy"`, ...), the same as vae-export's options. `target` picks the
    opset and graph forms for the runtimes the folder must load in (export/targets.py: "portable",
    the default, or "legacy"); `opset` exports the portable forms at another opset (18-23). The
    fp32 graphs must pass the parity gate (else `ParityError`, nothing written). An fp16 or int8
    variant that misses its tolerance is left out, its figures recorded in the manifest's parity
    section and reported through `log`, unless require_variants=True makes it a `ParityError` too.
    Everything is written to a temporary folder and renamed into place."""
    if options is not None and settings:
        raise InputError("expected ExportOptions or keyword settings, got both")
    if not isinstance(run, (Run, str, os.PathLike)) or not isinstance(out, (str, os.PathLike)):
        raise InputError(f"expected a run folder and an out folder path (str or Path), got {run!r} and {out!r}")
    if options is not None and not isinstance(options, ExportOptions):
        raise InputError(f"expected options to be ExportOptions, got {type(options).__name__}")
    options = options or ExportOptions.from_keywords(settings)
    out = Path(out)
    export_run(Path(run.path if isinstance(run, Run) else run), out, options, log or (lambda _: None))
    return out


def export_run(run_dir: Path, out: Path, options: ExportOptions, log: Log) -> dict[str, Any]:
    """`export`'s work; returns the manifest written."""
    target, opset = resolve_target(options.target, options.opset)
    check_destination(out, options.force)
    model, cfg, record = load_run(run_dir, options.checkpoint)
    data = load_data(cfg, options.data_dir, model)
    examples = test_examples(model, data)
    roles = model_role_names(model.config.kind, model.config.prior)

    log(f"exporting {run_dir} ({record['checkpoint']}) for target {target.name}, opset {opset}: {', '.join(roles)}")
    fp32 = {role: export_role(model, role, opset) for role in roles}
    for role, data_bytes in fp32.items():
        check_graph(data_bytes, graph_file(role))
    log("parity gate: torch eager vs onnxruntime-cpu vs onnx.reference")
    parity: dict[str, Any] = {"fp32": run_gate(model, fp32, examples, seed=options.seed)}
    if not parity["fp32"]["passed"]:
        raise ParityError("parity gate failed: " + "; ".join(failures(parity["fp32"])))
    files = {graph_file(role): b for role, b in fp32.items()}
    graphs = {"fp32": {role: graph_file(role) for role in roles}}
    variants: dict[str, Callable[[], tuple[dict[str, bytes], dict[str, Any]]]] = {}
    if options.fp16:
        variants["fp16"] = lambda: make_fp16(fp32, examples, options.seed)
    if options.int8:
        rng = np.random.default_rng(options.seed)
        chosen = rng.permutation(len(data.train))[: options.calibration_size]
        calibration = Examples(
            data.train[chosen],
            model.config.latent_dim,
            data.train_labels[chosen] if model.conditional else None,
            model.config.num_classes,
        )
        variants["int8"] = lambda: make_int8(fp32, calibration, examples, options.seed)
    for variant, make in variants.items():
        log(f"{variant} variant")
        variant_graphs, parity[variant] = make()
        if not parity[variant]["passed"]:
            refusal = f"{variant} variant refused: {parity[variant]['refusal']}"
            if options.require_variants:
                raise ParityError(refusal)
            log(f"warning: {refusal}; the folder is written without it (require_variants makes this an error)")
            continue
        files.update({graph_file(role, variant): b for role, b in variant_graphs.items()})
        graphs[variant] = {role: graph_file(role, variant) for role in roles}
    counts = np.bincount(data.train_labels, minlength=model.config.num_classes) if model.conditional else None
    manifest = build_manifest(
        options.name or out.name, model, cfg, record, target, opset, files, graphs, parity, counts
    )
    kept = write_folder(out, files, manifest, lambda folder: calibrate(folder, data.holdout, options.seed, log))
    if kept:
        log(f"kept what vae-export did not write: {', '.join(kept)}")
    return manifest


def calibrate(folder: Path, holdout: np.ndarray | None, seed: int, log: Log) -> dict[str, Any] | None:
    """The default anomaly score fitted on the run's held-out training images through the folder's
    fp32 graphs (what `VAE.score` of unlabelled images will compute: a conditional model's is
    marginal over its classes), or None when the run held none out."""
    from vaeport.runtime.scoring import DEFAULT_FPR, DEFAULT_K, Calibration, model_identity, score
    from vaeport.runtime.vae import VAE

    if holdout is None:
        log("no held-out training images (--holdout): no anomaly calibration; `vae-score --fit` can make one")
        return None
    log(f"calibrating the anomaly score on {len(holdout)} held-out training images")
    vae = VAE.load(folder, device="cpu")
    stats = score(vae, holdout, DEFAULT_K, seed, None)
    source = f"{len(holdout)} training images held out of training (--holdout)"
    identity = model_identity(vae.manifest)
    bounded = vae.manifest.family.bounds_likelihood
    return Calibration.fit(stats, bounded, DEFAULT_FPR, DEFAULT_K, seed, source, identity).to_dict()


def write_folder(
    out: Path,
    files: dict[str, bytes],
    manifest: dict[str, Any],
    scoring: Callable[[Path], dict[str, Any] | None] | None = None,
) -> list[str]:
    """Write everything into a temporary folder beside `out`, check it as the runtime will, add
    the manifest's `scoring` section (computed on that folder), then rename it into place
    (replacing an earlier model folder only after the new one is complete). What an earlier folder
    there holds that vae-export did not write (a model card, an eval.json, notes) is copied over;
    returns those names."""
    ensure_folder(out.parent, "--out's parent")
    kept = foreign_entries(out, exported_names(out) | set(files) | {MANIFEST_FILE})
    with atomic_folder(out, replace=True) as tmp:
        for file, data in files.items():
            (tmp / file).write_bytes(data)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        verify_folder(tmp)  # read back exactly as the runtime will
        if scoring is not None:
            manifest["scoring"] = scoring(tmp)
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        copy_into(kept, tmp)
    return [p.name + ("/" if p.is_dir() else "") for p in kept]


def exported_names(folder: Path) -> set[str]:
    """What an earlier export wrote into `folder`: its manifest's files, and any graph or weight file
    (an unlisted one would make the new folder fail its own check)."""
    if not folder.is_dir():
        return set()
    try:
        listed = set(json.loads((folder / MANIFEST_FILE).read_text()).get("files") or {})
    except (OSError, ValueError, AttributeError):
        listed = set()
    return listed | {p.name for p in folder.iterdir() if p.suffix in LOADABLE_SUFFIXES}


def verify_against(
    model_dir: str | Path,
    run_dir: Run | str | Path,
    *,
    checkpoint: str = "best",
    seed: int = 0,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Re-run the parity gate on an existing model folder against the run it came from; returns
    the report per variant (each with "passed")."""
    seed = check_seed(seed)
    manifest = verify_folder(Path(model_dir))
    model, cfg, _ = load_run(Path(run_dir.path if isinstance(run_dir, Run) else run_dir), checkpoint)
    if list(model.config.image_shape) != list(manifest.image_shape) or model.config.latent_dim != manifest.latent_dim:
        raise InputError(
            f"{model_dir} (image {list(manifest.image_shape)}, latent {manifest.latent_dim}) does not come from "
            f"{run_dir} (image {list(model.config.image_shape)}, latent {model.config.latent_dim})"
        )
    data = load_data(cfg, str(data_dir) if data_dir else None, model)
    graph_bytes = {
        variant: {role: read_verified(manifest, manifest.graph_file(variant, role)) for role in manifest.roles}
        for variant in manifest.variants
    }
    examples = test_examples(model, data)
    report = {"fp32": run_gate(model, graph_bytes["fp32"], examples, seed=seed)}
    if "fp16" in graph_bytes:
        report["fp16"] = fp16_parity(graph_bytes["fp32"], graph_bytes["fp16"], examples, seed)
    if "int8" in graph_bytes:
        report["int8"] = int8_parity(graph_bytes["fp32"], graph_bytes["int8"], examples, seed)
    return report
