"""What vae-export does: export, check, gate, add variants, then move a complete folder into place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.export.graphs import DEFAULT_OPSET, ExportError, check_graph, check_opset, export_decoder, export_encoder
from vaeport.export.manifest import build_manifest
from vaeport.export.parity import failures, run_gate
from vaeport.export.variants import fp16_parity, int8_parity, make_fp16, make_int8
from vaeport.runtime.errors import InputError
from vaeport.runtime.files import DECODER_FILE, ENCODER_FILE, MANIFEST_FILE
from vaeport.runtime.manifest import read_verified, verify_folder
from vaeport.train.datasets import ImageData, load_dataset
from vaeport.train.load import load_run

VARIANT_FILES = {
    "fp32": {"encoder": ENCODER_FILE, "decoder": DECODER_FILE},
    "fp16": {"encoder": "encoder.fp16.onnx", "decoder": "decoder.fp16.onnx"},
    "int8": {"encoder": "encoder.int8.onnx", "decoder": "decoder.int8.onnx"},
}


@dataclass
class ExportOptions:
    opset: int = DEFAULT_OPSET
    fp16: bool = False
    int8: bool = False
    calibration_size: int = 256
    name: str | None = None
    force: bool = False
    seed: int = 0
    data_dir: str | None = None
    checkpoint: str = "best"


def check_destination(out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise InputError(f"--out {out}: expected a new folder, got an existing one (use --force to replace it)")
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).exists()):
            raise InputError(f"--out {out}: refusing to replace something that is not a vaeport model folder")


def load_data(cfg: Any, data_dir: str | None) -> ImageData:
    return load_dataset(cfg.dataset, data_dir or cfg.data_dir, cfg.image_size, cfg.seed)


def export_run(run_dir: Path, out: Path, options: ExportOptions, log: Any = print) -> dict[str, Any]:
    """Export a run folder to a model folder; returns the manifest. Nothing is written on failure."""
    check_opset(options.opset)
    check_destination(out, options.force)
    model, cfg, record = load_run(run_dir, options.checkpoint)
    data = load_data(cfg, options.data_dir)

    log(f"exporting {run_dir} ({record['checkpoint']}) at opset {options.opset}")
    fp32 = {"encoder": export_encoder(model, options.opset), "decoder": export_decoder(model, options.opset)}
    for part, data_bytes in fp32.items():
        check_graph(data_bytes, VARIANT_FILES["fp32"][part])
    log("parity gate: torch eager vs onnxruntime-cpu vs onnx.reference")
    parity: dict[str, Any] = {"fp32": run_gate(model, fp32, data.test, seed=options.seed)}
    if not parity["fp32"]["passed"]:
        raise ExportError("parity gate failed: " + "; ".join(failures(parity["fp32"])))
    files = {VARIANT_FILES["fp32"][part]: b for part, b in fp32.items()}
    graphs = {"fp32": dict(VARIANT_FILES["fp32"])}
    if options.fp16:
        log("fp16 variant")
        fp16, parity["fp16"] = make_fp16(fp32, data.test, model.config.latent_dim, options.seed)
        files.update({VARIANT_FILES["fp16"][part]: b for part, b in fp16.items()})
        graphs["fp16"] = dict(VARIANT_FILES["fp16"])
    if options.int8:
        log("int8 variant (static QDQ, per-channel)")
        rng = np.random.default_rng(options.seed)
        calibration = data.train[rng.permutation(len(data.train))[: options.calibration_size]]
        int8, parity["int8"] = make_int8(fp32, calibration, data.test, model.config.latent_dim, options.seed)
        files.update({VARIANT_FILES["int8"][part]: b for part, b in int8.items()})
        graphs["int8"] = dict(VARIANT_FILES["int8"])
    name = options.name or out.name
    manifest = build_manifest(name, model, cfg, record, options.opset, files, graphs, parity)
    write_folder(out, files, manifest)
    return manifest


def write_folder(out: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Write everything into a temporary folder beside `out`, then rename it into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for file, data in files.items():
            (tmp / file).write_bytes(data)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        verify_folder(tmp)  # read back exactly as the runtime will
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; a model folder is meant to be shared
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def verify_against(model_dir: Path, run_dir: Path, options: ExportOptions) -> dict[str, Any]:
    """Re-run the parity gate on an existing model folder against the run it came from."""
    manifest = verify_folder(model_dir)
    model, cfg, _ = load_run(run_dir, options.checkpoint)
    if list(model.config.image_shape) != list(manifest.image_shape) or model.config.latent_dim != manifest.latent_dim:
        raise InputError(
            f"{model_dir} (image {list(manifest.image_shape)}, latent {manifest.latent_dim}) does not come from "
            f"{run_dir} (image {list(model.config.image_shape)}, latent {model.config.latent_dim})"
        )
    data = load_data(cfg, options.data_dir)
    graph_bytes = {
        variant: {part: read_verified(manifest, manifest.graph_file(variant, part)) for part in ("encoder", "decoder")}
        for variant in manifest.variants
    }
    report = {"fp32": run_gate(model, graph_bytes["fp32"], data.test, seed=options.seed)}
    if "fp16" in graph_bytes:
        report["fp16"] = fp16_parity(
            graph_bytes["fp32"], graph_bytes["fp16"], data.test, manifest.latent_dim, options.seed
        )
    if "int8" in graph_bytes:
        report["int8"] = int8_parity(
            graph_bytes["fp32"], graph_bytes["int8"], data.test, manifest.latent_dim, options.seed
        )
    return report
