"""`vae-generate`: decode N prior samples from a model folder into .npy shards, PNGs or a grid."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import click

from vaeport.runtime.cli_support import OneLineErrors, model_folder_options


@click.command(
    cls=OneLineErrors,
    epilog="Examples:\n\n  vae-generate models/fashion-mnist -n 64 --format grid --out out/samples\n\n"
    "  vae-generate models/fashion-mnist -n 1000000 --out out/big --shard 0/4   # machine 1 of 4\n\n"
    "  vae-generate models/fashion-mnist-cvae -n 1000 --label Sneaker --out out/sneakers\n\n"
    "  vae-generate models/fashion-mnist-cvae --per-class 6000 --out out/synthetic   # 60,000 images + labels",
)
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-n", "count", type=int, default=None, help="Number of images (all shards together).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write into.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["npy", "png", "grid"]), default="npy", show_default=True)
@click.option("--shard", default="0/1", show_default=True, help="i/n: write the i-th of n equal parts.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Images per .npy file (or PNG folder).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "uint8"]),
    default="float32",
    show_default=True,
    help=".npy only: uint8 stores round(255 * p), a quarter of float32's bytes.",
)
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Scale of z ~ N(0, I) (a VQ-VAE: divides the prior's logits; 0 is greedy).")  # fmt: skip
@click.option("--label", default=None, help="Conditional models: the class to draw, by name or index.")
@click.option(
    "--per-class",
    type=click.IntRange(min=1),
    default=None,
    help="Conditional models: this many images of every class (image i has class i mod K; instead of -n).",
)
@model_folder_options()
@click.option("--threads", type=click.IntRange(min=1), default=None, help="ONNX Runtime intra-op threads.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(
    model_dir: Path,
    count: int | None,
    out: Path,
    seed: int,
    batch_size: int,
    fmt: str,
    shard: str,
    chunk_size: int,
    dtype: str,
    temperature: float,
    label: str | None,
    per_class: int | None,
    device: str,
    variant: str,
    threads: int | None,
    quiet: bool,
) -> None:
    """Generate images from a model folder with seeded z ~ N(0, I), streaming to disk. A
    conditional model's labels are written beside the images (labels-*.npy)."""
    from vaeport.runtime.generate import GenerateSpec, chunks_of_shard, generate, parse_shard
    from vaeport.runtime.labels import resolve_label_option
    from vaeport.runtime.vae import VAE

    if (count is None) == (per_class is None):
        raise click.UsageError(
            "expected -n N or --per-class N (a conditional model), got " + ("both" if count is not None else "neither")
        )
    vae = VAE.load(model_dir, device=device, threads=threads, variant=variant, batch_size=batch_size)
    # a class-conditional VQ-VAE may draw the classes itself (from the training frequencies)
    index = resolve_label_option(label, per_class is not None, vae.classes, optional=vae.kind == "vqvae")
    classes = len(vae.classes or ())
    spec = GenerateSpec(
        n=count if per_class is None else per_class * classes,
        seed=seed,
        batch_size=batch_size,
        format=fmt,
        shard=parse_shard(shard),
        temperature=temperature,
        chunk_size=chunk_size,
        dtype=dtype,
        label=index,
        per_class=per_class is not None,
        classes=classes,
    )
    click.echo(f"{vae!r}", err=True)
    total = sum(end - start for start, end in chunks_of_shard(spec))
    started = [0.0]

    def rate(_: object) -> str:
        if not started[0]:
            started[0] = time.perf_counter()
            return ""
        done = bar.pos
        return f"{done / max(time.perf_counter() - started[0], 1e-9):,.0f} img/s"

    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(os.devnull, "w")) if quiet else None
        bar = stack.enter_context(
            click.progressbar(length=total, label="generating", file=sink, item_show_func=rate, show_pos=True)
        )
        summary = generate(vae, spec, out, progress=bar.update)
    repaired = summary["chunks_replaced"]
    click.echo(
        f"wrote {summary['images_written']} images ({summary['images_skipped']} already there and verified"
        + (f"; {repaired} damaged or unrecorded chunk{'s' * (repaired != 1)} rewritten" if repaired else "")
        + f") to {out}"
        + (f" at {summary['images_per_second']:,.0f} images/s" if summary["images_per_second"] else "")
    )
