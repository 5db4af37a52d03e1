"""Streamed batch generation: decode batch by batch, write shards atomically, resume by skipping.

Images are numbered 0..n-1 and grouped into chunks of `chunk_size` (one .npy file each, named by
its first and last index). Latent i depends only on (seed, i), and `--shard i/k` takes a
contiguous run of whole chunks, so k machines together write exactly the files of one run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.runtime.atomic import atomic_write, atomic_write_text
from vaeport.runtime.errors import InputError
from vaeport.runtime.png import encode_png, grid, to_uint8
from vaeport.runtime.sampling import prior_latents
from vaeport.runtime.vae import VAE

FORMATS = ("npy", "png", "grid")
DTYPES = ("float32", "float16", "uint8")  # of .npy shards; uint8 is round(255 * p), as in PNGs
DEFAULT_CHUNK = 10_000
MAX_GRID = 10_000


@dataclass(frozen=True)
class GenerateSpec:
    n: int
    seed: int = 0
    batch_size: int = 256
    format: str = "npy"
    shard: tuple[int, int] = (0, 1)  # (index, count)
    temperature: float = 1.0
    chunk_size: int = DEFAULT_CHUNK
    dtype: str = "float32"  # .npy only

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise InputError(f"expected -n to be a positive integer, got {self.n}")
        if self.format not in FORMATS:
            raise InputError(f"expected --format to be one of {', '.join(FORMATS)}, got {self.format!r}")
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise InputError(f"expected --shard i/n with 0 <= i < n, got {index}/{count}")
        if self.format == "grid" and (count != 1 or self.n > MAX_GRID):
            raise InputError(f"expected --format grid with at most {MAX_GRID} images and no sharding")
        if self.dtype not in DTYPES:
            raise InputError(f"expected --dtype to be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.dtype != "float32" and self.format != "npy":
            raise InputError(f"expected --dtype float32 with --format {self.format} (PNGs are 8-bit anyway)")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise InputError("expected --batch-size and --chunk-size of at least 1")
        if not (np.isfinite(self.temperature) and self.temperature >= 0):
            raise InputError(f"expected --temperature >= 0, got {self.temperature}")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"expected --shard as i/n (e.g. 0/4), got {text!r}") from None
    return index, count


def chunks_of_shard(spec: GenerateSpec) -> list[tuple[int, int]]:
    """[start, end) index ranges of the chunks this shard writes."""
    chunk = spec.chunk_size if spec.format != "grid" else spec.n
    bounds = [(s, min(s + chunk, spec.n)) for s in range(0, spec.n, chunk)]
    index, count = spec.shard
    return bounds[index * len(bounds) // count : (index + 1) * len(bounds) // count]


def chunk_name(spec: GenerateSpec, start: int, end: int) -> str:
    if spec.format == "grid":
        return "grid.png"
    if spec.format == "npy":
        return f"images-{start:010d}-{end - 1:010d}.npy"
    return f"png-{start:010d}-{end - 1:010d}"  # a folder of PNGs


def decode_range(vae: VAE, spec: GenerateSpec, start: int, end: int) -> Iterator[np.ndarray]:
    """Decoded images start..end-1, batch by batch."""
    # The range's latents are drawn at once: drawn batch by batch, each generator block would be
    # drawn again for every batch it overlaps (a fifth of the time for a fast MLP decoder).
    latents = prior_latents(spec.seed, start, end - start, vae.latent_dim, spec.temperature)
    for s in range(0, end - start, spec.batch_size):
        yield vae.decode(latents[s : s + spec.batch_size])


def decode_chunk(
    vae: VAE, spec: GenerateSpec, out: Path, start: int, end: int, on_batch: Callable[[int], None]
) -> Callable[[], None]:
    """Decode images start..end-1 and return the call that writes them to their final name."""
    name = chunk_name(spec, start, end)
    if spec.format == "npy":
        buffer = np.empty((end - start, *vae.image_shape), dtype=spec.dtype)
        filled = 0
        for images in decode_range(vae, spec, start, end):
            buffer[filled : filled + len(images)] = to_uint8(images) if spec.dtype == "uint8" else images
            filled += len(images)
            on_batch(len(images))
        return lambda: atomic_write(out / name, lambda f: np.save(f, buffer))
    if spec.format == "grid":
        images = np.concatenate(list(decode_range(vae, spec, start, end)))
        on_batch(len(images))
        return lambda: atomic_write(out / name, lambda f: f.write(encode_png(grid(images))))
    # PNGs go into a temporary folder renamed when complete, so a chunk is all there or absent.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    index = start
    for images in decode_range(vae, spec, start, end):
        for image in images:
            (tmp / f"{index:010d}.png").write_bytes(encode_png(image))
            index += 1
        on_batch(len(images))
    return lambda: os.replace(tmp, out / name)


def write_chunks(
    vae: VAE, spec: GenerateSpec, out: Path, todo: list[tuple[int, int]], on_batch: Callable[[int], None]
) -> None:
    """Decode chunk k+1 while a writer thread saves (and fsyncs) chunk k. At most one write is
    pending, so memory holds two chunks whatever n is; ONNX Runtime and file IO release the GIL."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaeport-writer") as writer:
        pending: Future[None] | None = None
        for start, end in todo:
            finish = decode_chunk(vae, spec, out, start, end, on_batch)
            if pending is not None:
                pending.result()  # a failed write stops the run here
            pending = writer.submit(finish)
        if pending is not None:
            pending.result()


def fingerprint(vae: VAE, spec: GenerateSpec) -> dict[str, Any]:
    """What must match for files already in `out` to belong to this generation (all shards)."""
    return {
        "model_sha256": {k: v["sha256"] for k, v in vae.manifest["files"].items()},
        "variant": vae.variant,
        "n": spec.n,
        "seed": spec.seed,
        "temperature": spec.temperature,
        "format": spec.format,
        "dtype": spec.dtype,
        "chunk_size": spec.chunk_size,
    }


def check_same_generation(out: Path, expected: dict[str, Any]) -> None:
    for path in out.glob("generate-*-of-*.json"):
        try:
            earlier = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        changed = sorted(k for k, v in expected.items() if earlier.get(k) != v)
        if changed:
            raise InputError(
                f"--out {out}: expected a new folder or one of the same generation, got files of another "
                f"({path.name} differs in {', '.join(changed)}); use another --out"
            )


def generate(vae: VAE, spec: GenerateSpec, out: Path, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write this shard's chunks into `out`, skipping complete ones; returns a summary."""
    out.mkdir(parents=True, exist_ok=True)
    plan = fingerprint(vae, spec)
    check_same_generation(out, plan)
    index, count = spec.shard
    record = out / f"generate-{index}-of-{count}.json"
    plan_text = json.dumps({**plan, "shard": [index, count], "complete": False}, indent=2) + "\n"
    atomic_write_text(record, plan_text)
    todo, skipped = [], 0
    for start, end in chunks_of_shard(spec):
        if (out / chunk_name(spec, start, end)).exists():
            skipped += end - start
        else:
            todo.append((start, end))
    started = time.perf_counter()
    written = 0

    def on_batch(count: int) -> None:
        nonlocal written
        written += count
        if progress is not None:
            progress(count)

    write_chunks(vae, spec, out, todo, on_batch)
    seconds = time.perf_counter() - started
    summary = {
        **plan,
        "model": vae.manifest.get("name"),
        "device": vae.device,
        "batch_size": spec.batch_size,
        "shard": [index, count],
        "complete": True,
        "images_written": written,
        "images_skipped": skipped,
        "seconds": seconds,
        "images_per_second": written / seconds if seconds > 0 and written else None,
    }
    text = json.dumps(summary, indent=2) + "\n"
    atomic_write_text(record, text)
    return summary
