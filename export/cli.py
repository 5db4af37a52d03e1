"""`vae-export`: run folder -> model folder (a graph per role, vae.json) behind a parity gate.

Every export option is generated from `ExportOptions` (export/options.py), as `export()` takes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vaeport.export.options import ExportOptions
from vaeport.runtime.cli_support import OneLineErrors
from vaeport.runtime.errors import InputError, ParityError, require_module
from vaeport.train.settings import dataclass_options


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
@dataclass_options(ExportOptions)
@click.option(
    "--verify",
    "verify_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Re-run the parity gate on this existing model folder (with --against).",
)
@click.option("--against", type=click.Path(path_type=Path), default=None, help="Run folder for --verify.")
def main(
    run_dir: Path | None, out: Path | None, verify_dir: Path | None, against: Path | None, **settings: Any
) -> None:
    """Export a trained run folder to a verified ONNX model folder."""
    require_module("torch", "train", "vae-export")
    require_module("onnx", "train", "vae-export")
    require_module("onnxruntime", "cpu", "vae-export's parity gate")
    from vaeport.export.pipeline import export, verify_against
    from vaeport.runtime.manifest import read_manifest

    options = ExportOptions(**settings)
    if verify_dir is not None:
        if against is None or run_dir is not None or out is not None:
            raise InputError("expected --verify MODEL_DIR --against RUN_DIR (and no RUN_DIR or --out)")
        report = verify_against(
            verify_dir, against, checkpoint=options.checkpoint, seed=options.seed, data_dir=options.data_dir
        )
        click.echo(f"verified {verify_dir} against {against}:")
        click.echo("\n".join(summarize(report)))
        failed = [variant for variant, section in report.items() if not section["passed"]]
        if failed:
            raise ParityError(f"parity check failed for {', '.join(failed)}")
        return
    if run_dir is None or out is None:
        raise InputError("expected RUN_DIR and --out MODEL_DIR (or --verify MODEL_DIR --against RUN_DIR)")
    export(run_dir, out, options, log=lambda message: click.echo(f"vae-export: {message}", err=True))
    manifest = read_manifest(out)
    click.echo("\n".join(summarize(manifest.parity)))
    click.echo(f"wrote {out} ({', '.join(sorted(manifest.files))}, vae.json)")
