"""`vae-score`: per-image scores and anomaly flags of a folder of images, an .npy or an IDX file,
written as CSV; or (`--fit`) a calibration of the anomaly score on the user's own normal images."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import click
import numpy as np

from vaeport.runtime.atomic import check_output_file
from vaeport.runtime.cli_support import OneLineErrors, model_folder_options
from vaeport.runtime.evaluate import MAX_K


def read_calibration(path: Path):  # -> Calibration
    from vaeport.runtime.errors import InputError
    from vaeport.runtime.scoring import Calibration

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"--calibration {path}: expected a calibration JSON file, got an unreadable one ({exc})"
        ) from exc
    return Calibration.from_dict(data, f"--calibration {path}", InputError)


@click.command(
    cls=OneLineErrors,
    epilog="Examples:\n\n  vae-score models/fashion-mnist shirts/ --out scores.csv\n\n"
    "  vae-score models/fashion-mnist --fit normal.npy --fpr 0.01 --out calibration.json\n\n"
    "  vae-score models/fashion-mnist line-7.npy --calibration calibration.json --out scores.csv",
)
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path), required=False)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="CSV of scores (or, with --fit, JSON).")
@click.option(
    "--fit",
    "fit_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Normal images to calibrate the anomaly score on (writes the calibration to --out).",
)
@click.option("--fpr", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=0.01, show_default=True,
              help="--fit: the false-positive rate the threshold gives on the normal images.")  # fmt: skip
@click.option("--calibration", type=click.Path(path_type=Path), default=None, help="Use this calibration file.")
@click.option(
    "--k", type=click.IntRange(min=1, max=MAX_K), default=64, show_default=True, help="Importance samples per image."
)
@click.option(
    "--skip-bad-images",
    is_flag=True,
    help="Leave out PNG/JPEG files that cannot be read or are not the model's size (listed on stderr).",
)
@click.option("--resize", is_flag=True, help="Resize PNG/JPEG files of another size to the model's (Lanczos).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@model_folder_options()
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(
    model_dir: Path,
    input_path: Path | None,
    out: Path,
    fit_path: Path | None,
    fpr: float,
    calibration: Path | None,
    k: int,
    skip_bad_images: bool,
    resize: bool,
    seed: int,
    device: str,
    variant: str,
    quiet: bool,
) -> None:
    """Score every image of INPUT (a folder of PNG/JPEG files, one such file, an .npy array or an IDX file): one CSV
    row per image with the IWAE-k NLL, bits/dim, KL, reconstruction and the other statistics, the
    anomaly score and whether it is flagged."""
    from vaeport.runtime.atomic import atomic_write, atomic_write_text
    from vaeport.runtime.errors import InputError
    from vaeport.runtime.image_files import image_batches
    from vaeport.runtime.scoring import FIELDS, STATISTICS, Calibration, model_identity, score
    from vaeport.runtime.vae import VAE

    if (input_path is None) == (fit_path is None):
        raise InputError("expected INPUT to score or --fit NORMAL_INPUT to calibrate on (one of the two)")
    if fit_path is not None and calibration is not None:
        raise InputError("expected --calibration only when scoring, not with --fit")
    check_output_file(out)  # before the scoring, not after it
    vae = VAE.load(model_dir, device=device, variant=variant)
    identity = model_identity(vae.manifest)
    used = read_calibration(calibration) if calibration is not None else vae.calibration
    if calibration is not None:
        used.check_for(identity, k, f"--calibration {calibration}")
    elif used is not None and fit_path is None and k != used.k:
        raise InputError(
            f"expected --k {used.k}, the k the model folder's anomaly calibration was fitted at, got --k {k} "
            "(or --fit a calibration at this k and pass it with --calibration)"
        )
    source = fit_path if fit_path is not None else input_path
    skipped: list[str] | None = [] if skip_bad_images else None
    total, batches = image_batches(source, vae.image_shape, skipped=skipped, resize=resize)
    names: list[str] = []
    # a conditional model scores unlabelled images over its classes and names the most probable one
    fields = (*FIELDS, "label") if vae.conditional else FIELDS
    columns: dict[str, list[np.ndarray]] = {name: [] for name in fields}
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(os.devnull, "w")) if quiet else None
        bar = stack.enter_context(click.progressbar(length=total, label="scoring", file=sink, show_pos=True))
        for batch_names, images in batches:
            part = score(vae, images, k, seed, None if fit_path is not None else used)
            names += batch_names
            for name in fields:
                columns[name].append(part[name])
            bar.update(len(images))
    if skipped:
        shown = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        click.echo(f"vae-score: skipped {len(skipped)} file(s): {shown}", err=True)
    if not names:
        raise InputError(f"{source}: expected at least one image to score, got none that could be read")
    results = {name: None if parts[0] is None else np.concatenate(parts) for name, parts in columns.items()}
    if fit_path is not None:
        stats = {s: results[s] for s in STATISTICS}
        source = f"{len(names)} images of {fit_path.name}"
        fitted = Calibration.fit(stats, vae.manifest.family.bounds_likelihood, fpr, k, seed, source, identity)
        atomic_write_text(out, json.dumps(fitted.to_dict(), indent=2) + "\n")
        click.echo(
            f"calibrated on {len(names)} normal images: threshold {fitted.threshold:.4g} at fpr {fpr:g}; wrote {out}"
        )
        return

    def write_rows(f: Any) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["image", *fields])
        classes = vae.classes or ()
        for i, name in enumerate(names):
            row = [format_value(None if results[field] is None else results[field][i]) for field in FIELDS]
            if vae.conditional:
                row.append(spreadsheet_safe(classes[int(results["label"][i])]))
            writer.writerow([spreadsheet_safe(name), *row])
        text.flush()
        text.detach()

    atomic_write(out, write_rows)
    if used is None:
        note = "anomaly and flagged are empty: no calibration (vae-score --fit makes one)"
    else:
        note = f"{int(results['flagged'].sum())} flagged"
    click.echo(f"scored {len(names)} images, {note}; wrote {out}")


def spreadsheet_safe(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (=, +, -, @, tab or CR first: OWASP's
    CSV injection advice, a leading apostrophe)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def format_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    number = float(value)  # type: ignore[arg-type]
    return "" if np.isnan(number) else f"{number:.6g}"
