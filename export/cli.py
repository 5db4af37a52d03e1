"""`vae-export`: run folder -> model folder (encoder.onnx, decoder.onnx, vae.json) behind a parity gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vaeport.runtime.cli_support import OneLineErrors
from vaeport.runtime.errors import InputError, ParityError, require_module


def summarize(report: dict[str, Any]) -> list[str]:
    lines = []
    for variant, section in report.items():
        if "refusal" in section:
            lines.append(f"  {variant}: REFUSED ({section['refusal']}), not written")
            continue
        if "checks" in section:
            worst = max((c.get("max_abs", float("inf")) for c in section["checks"]), default=0.0)
            lines.append(
                f"  {variant}: {sum(c['passed'] for c in section['checks'])}/{len(section['checks'])} checks "
                f"passed, worst max |diff| {worst:.2e} -> {'PASS' if section['passed'] else 'FAIL'}"
            )
        else:
            lines.append(
                f"  {variant}: mean |pixel diff| {section['reconstruction_mean_abs_pixel_diff']:.4f} "
                f"-> {'PASS' if section['passed'] else 'FAIL'}"
            )
        if "decode_speed_vs_fp32" in section:
            lines[-1] += f", decode {section['decode_speed_vs_fp32']:.2f}x fp32"
    return lines


@click.command(
    cls=OneLineErrors,
    epilog="Examples:\n\n  vae-export runs/fmnist --out models/fmnist --fp16 --int8\n\n"
    "  vae-export --verify models/fmnist --against runs/fmnist",
)
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--out", type=click.Path(path_type=Path), help="Model folder to write.")
@click.option(
    "--target",
    type=click.Choice(["portable", "legacy"]),
    default="portable",
    show_default=True,
    help="portable: opset 18, IR 8 (onnxruntime >= 1.15, OpenVINO, OpenCV DNN, tract); legacy: opset 13 forms "
    "for converters such as onnx2torch (docs/compatibility.md).",
)
@click.option("--opset", type=int, default=None, help="Export the portable forms at this opset instead (18-23).")
@click.option("--fp16", is_flag=True, help="Also write float16 graphs (float32 inputs/outputs).")
@click.option("--int8", is_flag=True, help="Also write static int8 QDQ graphs (refused if too inaccurate).")
@click.option(
    "--calibration-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Training images used to calibrate int8.",
)
@click.option("--name", default=None, help="Model name in the manifest (default: the folder name).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing model folder at --out.")
@click.option(
    "--require-variants",
    is_flag=True,
    help="Fail (exit 8, nothing written) when an asked-for fp16/int8 variant misses its tolerance, instead of "
    "writing the folder without it.",
)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where the run's data set is.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the parity inputs.")
@click.option(
    "--verify",
    "verify_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Re-run the parity gate on this existing model folder (with --against).",
)
@click.option("--against", type=click.Path(path_type=Path), default=None, help="Run folder for --verify.")
def main(
    run_dir: Path | None,
    out: Path | None,
    target: str,
    opset: int | None,
    fp16: bool,
    int8: bool,
    calibration_size: int,
    name: str | None,
    checkpoint: str,
    force: bool,
    require_variants: bool,
    data_dir: Path | None,
    seed: int,
    verify_dir: Path | None,
    against: Path | None,
) -> None:
    """Export a trained run folder to a verified ONNX model folder."""
    require_module("torch", "train", "vae-export")
    require_module("onnx", "train", "vae-export")
    require_module("onnxruntime", "cpu", "vae-export's parity gate")
    from vaeport.export.pipeline import export, verify_against
    from vaeport.runtime.manifest import read_manifest

    if verify_dir is not None:
        if against is None or run_dir is not None or out is not None:
            raise InputError("expected --verify MODEL_DIR --against RUN_DIR (and no RUN_DIR or --out)")
        report = verify_against(verify_dir, against, checkpoint=checkpoint, seed=seed, data_dir=data_dir)
        click.echo(f"verified {verify_dir} against {against}:")
        click.echo("\n".join(summarize(report)))
        failed = [variant for variant, section in report.items() if not section["passed"]]
        if failed:
            raise ParityError(f"parity check failed for {', '.join(failed)}")
        return
    if run_dir is None or out is None:
        raise InputError("expected RUN_DIR and --out MODEL_DIR (or --verify MODEL_DIR --against RUN_DIR)")
    export(
        run_dir,
        out,
        fp16=fp16,
        int8=int8,
        target=target,
        opset=opset,
        name=name,
        force=force,
        checkpoint=checkpoint,
        seed=seed,
        data_dir=data_dir,
        calibration_size=calibration_size,
        require_variants=require_variants,
        log=lambda message: click.echo(f"vae-export: {message}", err=True),
    )
    manifest = read_manifest(out)
    click.echo("\n".join(summarize(manifest.parity)))
    click.echo(f"wrote {out} ({', '.join(sorted(manifest.files))}, vae.json)")
