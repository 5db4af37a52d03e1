"""Streamed batch generation: decode batch by batch, write chunks atomically, resume by verifying.

Images are numbered 0..n-1 and grouped into chunks of `chunk_size` (one .npy file or PNG folder
each, named by its first and last index). Latent i depends only on (seed, i), and `--shard i/k`
takes a contiguous run of whole chunks, so k machines together write exactly the files of one run.

A conditional model draws one class (`label`) or a balanced set (`per_class`: image i has class
i mod K, so every chunk and shard is balanced too); each chunk's labels are written beside it as
`labels-<first>-<last>.npy` (int64), under the same rules as the images.

The shard's record (`generate-i-of-k.json`) lists every finished chunk with its size and sha256.
A re-run skips a chunk only when the file on disk still matches its record; anything else (a
truncated or corrupt file, one the record does not know) is written again, and temporary files
that an interrupted run left are deleted. Same seed, same files, however a run was interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from vaeport.runtime.atomic import atomic_folder, atomic_write, atomic_write_text, ensure_folder, remove_leftovers
from vaeport.runtime.errors import InputError
from vaeport.runtime.hashing import sha256_file
from vaeport.runtime.inputs import check_seed
from vaeport.runtime.png import encode_png, grid, to_uint8
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
    label: int | None = None  # conditional models: every image of this class index
    per_class: bool = False  # conditional models: image i has class i mod `classes`
    classes: int = 0  # the model's class count (0: unconditional)

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n <= 0:
            raise InputError(f"expected -n to be a positive integer, got {self.n}")
        check_seed(self.seed, "--seed")
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
        if self.label is not None and self.per_class:
            raise InputError("expected one of --label or --per-class, got both")
        if self.per_class and self.n % max(self.classes, 1):
            raise InputError(f"expected --per-class images for each of the {self.classes} classes, got n={self.n}")

    @property
    def labelled(self) -> bool:
        return self.label is not None or self.per_class

    def labels(self, start: int, end: int) -> np.ndarray | None:
        """The class indices of images start..end-1 (None for an unconditional model)."""
        if self.label is not None:
            return np.full(end - start, self.label, dtype=np.int64)
        if self.per_class:
            return np.arange(start, end, dtype=np.int64) % self.classes
        return None


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


def labels_name(start: int, end: int) -> str:
    return f"labels-{start:010d}-{end - 1:010d}.npy"


def draws_classes(vae: VAE, spec: GenerateSpec) -> bool:
    """A class-conditional VQ-VAE sampled with neither --label nor --per-class draws each image's
    class from the training frequencies (runtime/vqvae.py); its labels are written like any others."""
    return vae.kind == "vqvae" and vae.conditional and not spec.labelled


def range_labels(vae: VAE, spec: GenerateSpec, start: int, end: int) -> np.ndarray | None:
    """The classes of images start..end-1 (None: unconditional)."""
    if draws_classes(vae, spec):
        return vae.drawn_classes(end - start, spec.seed, start)  # type: ignore[attr-defined]
    return spec.labels(start, end)


def chunk_files(vae: VAE, spec: GenerateSpec, start: int, end: int) -> list[str]:
    """The files (or PNG folder) a chunk writes: its images, and its labels when conditional."""
    labelled = spec.labelled or draws_classes(vae, spec)
    return [chunk_name(spec, start, end), *([labels_name(start, end)] if labelled else [])]


def decode_range(vae: VAE, spec: GenerateSpec, start: int, end: int) -> Iterator[np.ndarray]:
    """Decoded images start..end-1, batch by batch."""
    labels = range_labels(vae, spec, start, end)
    if vae.kind == "vqvae":  # the codes of the class each image is drawn in, then the decoder alone
        codes = vae.sample_latent(end - start, spec.seed, spec.temperature, start=start, label=labels)  # type: ignore[call-arg]
        for s in range(0, end - start, spec.batch_size):
            yield vae.decode(codes[s : s + spec.batch_size])
        return
    # The range's latents are drawn at once: drawn batch by batch, each generator block would be
    # drawn again for every batch it overlaps (a fifth of the time for a fast MLP decoder).
    latents = vae.sample_latent(end - start, spec.seed, spec.temperature, start=start)
    for s in range(0, end - start, spec.batch_size):
        batch = None if labels is None else labels[s : s + spec.batch_size]
        yield vae.decode(latents[s : s + spec.batch_size], label=batch)


class HashingWriter:
    """A binary file that also computes the sha256 and size of what is written through it."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file, self.digest, self.size = file, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += len(view)
        return self.file.write(view)

    def entry(self) -> dict[str, Any]:
        return {"bytes": self.size, "sha256": self.digest.hexdigest()}


def folder_record(files: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """A PNG folder's entry: its total size and a digest of each file's name, size and bytes, in
    name order (the order they are written and listed in)."""
    digest, size = hashlib.sha256(), 0
    for name, data in files:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
        size += len(data)
    return {"bytes": size, "sha256": digest.hexdigest()}


def file_entry(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def folder_entry(path: Path) -> dict[str, Any]:
    return folder_record((item.name, item.read_bytes()) for item in sorted(path.iterdir()))


def chunk_on_disk(path: Path) -> dict[str, Any] | None:
    """Size and sha256 of a chunk as it is on disk (None when absent or unreadable)."""
    try:
        if path.is_dir():
            return folder_entry(path)
        return file_entry(path) if path.is_file() else None
    except OSError:
        return None


def decode_chunk(
    vae: VAE, spec: GenerateSpec, out: Path, start: int, end: int, on_batch: Callable[[int], None]
) -> Callable[[], dict[str, dict[str, Any]]]:
    """Decode images start..end-1 and return the call that writes them (and their labels) to
    their final names and returns the record entry (bytes, sha256) of each file it wrote."""
    write_images = decode_images(vae, spec, out / chunk_name(spec, start, end), start, end, on_batch)
    labels = range_labels(vae, spec, start, end)

    def write() -> dict[str, dict[str, Any]]:
        entries = {}
        if labels is not None:  # labels first: images on disk always have their labels beside them
            name = labels_name(start, end)
            entries[name] = write_file(out / name, lambda f: np.save(f, labels))
        entries[chunk_name(spec, start, end)] = write_images()
        return entries

    return write


def decode_images(
    vae: VAE, spec: GenerateSpec, path: Path, start: int, end: int, on_batch: Callable[[int], None]
) -> Callable[[], dict[str, Any]]:
    """Decode images start..end-1 and return the call that writes them to `path` and returns
    their record entry."""
    if spec.format == "npy":
        buffer = np.empty((end - start, *vae.image_shape), dtype=spec.dtype)
        filled = 0
        for images in decode_range(vae, spec, start, end):
            buffer[filled : filled + len(images)] = to_uint8(images) if spec.dtype == "uint8" else images
            filled += len(images)
            on_batch(len(images))
        return lambda: write_file(path, lambda f: np.save(f, buffer))
    if spec.format == "grid":
        images = np.concatenate(list(decode_range(vae, spec, start, end)))
        on_batch(len(images))
        return lambda: write_file(path, lambda f: f.write(encode_png(grid(images))))
    # PNGs: encoded now, written by the writer thread into a folder renamed when complete.
    pngs: list[tuple[str, bytes]] = []
    index = start
    for images in decode_range(vae, spec, start, end):
        for image in images:
            pngs.append((f"{index:010d}.png", encode_png(image)))
            index += 1
        on_batch(len(images))
    return lambda: write_png_folder(path, pngs)


def write_file(path: Path, write: Callable[[Any], Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {}

    def hashed(f: IO[bytes]) -> None:
        writer = HashingWriter(f)
        write(writer)
        entry.update(writer.entry())

    atomic_write(path, hashed)
    return entry


def write_png_folder(path: Path, pngs: list[tuple[str, bytes]]) -> dict[str, Any]:
    with atomic_folder(path, replace=True) as tmp:
        for name, data in pngs:
            (tmp / name).write_bytes(data)
    return folder_record(pngs)


class ShardRecord:
    """generate-i-of-k.json: the generation's fingerprint and every finished chunk's size and
    sha256, rewritten (atomically) after each chunk."""

    def __init__(self, out: Path, spec: GenerateSpec, plan: dict[str, Any]) -> None:
        index, count = spec.shard
        self.path = out / f"generate-{index}-of-{count}.json"
        self.plan = {**plan, "shard": [index, count]}
        self.chunks: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, json.JSONDecodeError, AttributeError, TypeError):
            earlier = json.loads(self.path.read_text())
            if all(earlier.get(k) == v for k, v in self.plan.items()):
                self.chunks = {k: v for k, v in earlier.get("chunks", {}).items() if isinstance(v, dict)}

    def verified(self, name: str, path: Path) -> bool:
        """True when the chunk on disk is exactly what was recorded for it."""
        recorded = self.chunks.get(name)
        return recorded is not None and chunk_on_disk(path) == {k: recorded.get(k) for k in ("bytes", "sha256")}

    def save(self, **extra: Any) -> None:
        record = {**self.plan, "complete": False, **extra, "chunks": dict(sorted(self.chunks.items()))}
        atomic_write_text(self.path, json.dumps(record, indent=2) + "\n")


def write_chunks(
    vae: VAE,
    spec: GenerateSpec,
    out: Path,
    todo: list[tuple[int, int]],
    on_batch: Callable[[int], None],
    record: ShardRecord,
) -> None:
    """Decode chunk k+1 while a writer thread saves (and fsyncs) chunk k and records it. At most
    one write is pending, so memory holds two chunks whatever n is; ONNX Runtime and file IO
    release the GIL."""

    def finish(write: Callable[[], dict[str, dict[str, Any]]]) -> None:
        record.chunks.update(write())
        record.save()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaeport-writer") as writer:
        pending: Future[None] | None = None
        for start, end in todo:
            write = decode_chunk(vae, spec, out, start, end, on_batch)
            if pending is not None:
                pending.result()  # a failed write stops the run here
            pending = writer.submit(finish, write)
        if pending is not None:
            pending.result()


def fingerprint(vae: VAE, spec: GenerateSpec) -> dict[str, Any]:
    """What must match for files already in `out` to belong to this generation (all shards)."""
    return {
        "model_sha256": {k: v["sha256"] for k, v in vae.manifest.files.items()},
        "variant": vae.variant,
        "n": spec.n,
        "seed": spec.seed,
        "temperature": spec.temperature,
        "format": spec.format,
        "dtype": spec.dtype,
        "chunk_size": spec.chunk_size,
        **({"label": spec.label} if spec.label is not None else {}),
        **({"per_class": True} if spec.per_class else {}),
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


@contextlib.contextmanager
def shard_lock(out: Path, spec: GenerateSpec) -> Iterator[None]:
    """One writer per shard and folder: a second vae-generate of the same shard into the same
    folder is refused instead of racing the first (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    index, count = spec.shard
    path = out / f".generate-{index}-of-{count}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(
            f"--out {out}: another vae-generate is writing shard {index}/{count} there; "
            "wait for it or use another --out"
        ) from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # only a killed run leaves it, and the next run reuses it
        os.close(fd)


def generate(vae: VAE, spec: GenerateSpec, out: Path, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write this shard's chunks into `out`, skipping those verified on disk; returns a summary."""
    out = ensure_folder(Path(out))
    plan = fingerprint(vae, spec)
    check_same_generation(out, plan)
    with shard_lock(out, spec):
        record = ShardRecord(out, spec, plan)
        removed = remove_leftovers(record.path)
        todo, skipped, replaced = [], 0, 0
        for start, end in chunks_of_shard(spec):
            names = chunk_files(vae, spec, start, end)
            for name in names:
                removed += remove_leftovers(out / name)
            if all(record.verified(name, out / name) for name in names):
                skipped += end - start
                continue
            for name in names:
                record.chunks.pop(name, None)
            path = out / names[0]
            if path.exists() or path.is_symlink():
                replaced += 1
            todo.append((start, end))
        record.save()
        started = time.perf_counter()
        written = 0

        def on_batch(count: int) -> None:
            nonlocal written
            written += count
            if progress is not None:
                progress(count)

        write_chunks(vae, spec, out, todo, on_batch, record)
        seconds = time.perf_counter() - started
        summary = {
            "model": vae.manifest.name,
            "device": vae.device,
            "batch_size": spec.batch_size,
            "images_written": written,
            "images_skipped": skipped,
            "chunks_replaced": replaced,
            "leftovers_removed": removed,
            "seconds": seconds,
            "images_per_second": written / seconds if seconds > 0 and written else None,
        }
        record.save(**summary, complete=True)
    return {**record.plan, **summary, "complete": True}
