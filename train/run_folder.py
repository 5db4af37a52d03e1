"""The run folder: config.json, metrics.jsonl, last.pt and best.pt, and `Run`, its handle."""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from vaeport.runtime.atomic import atomic_write_text, check_creatable, ensure_folder, foreign_entries
from vaeport.runtime.errors import InputError
from vaeport.train.config import TrainConfig
from vaeport.train.datasets import ImageData

LAST = "last.pt"  # checkpoints (train/checkpoint.py writes and reads them; this module needs no torch)
BEST = "best.pt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.json"
RUN_MARKERS = (CONFIG_FILE, LAST)
RUN_FILES = {CONFIG_FILE, METRICS_FILE, LAST, BEST}  # what training writes: all that --force removes


def package_versions(*names: str) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_new_run(out: Path, force: bool) -> None:
    """Before any work: `out` may take a new run (new, empty, or with `force` an old run folder)."""
    check_creatable(out)
    if out.exists():
        contents = list(out.iterdir())
        if contents and not force:
            raise InputError(
                f"--out {out}: expected a new or empty folder, got an existing one "
                "(use --resume to continue it or --force to start over)"
            )
        if contents and not any((out / m).exists() for m in RUN_MARKERS):
            raise InputError(f"--out {out}: refusing to clear a folder that is not a vaeport run folder")


def prepare_new_run(out: Path, force: bool) -> list[str]:
    """Check that `out` may be used for a new run; with --force remove what training wrote there
    (config.json, metrics.jsonl, last.pt, best.pt and their temporary leftovers) and keep anything
    else (notes, pictures, an eval.json: vae-train did not write them). Returns what was kept."""
    check_new_run(out, force)
    kept = foreign_entries(out, RUN_FILES)
    if out.is_dir():
        for entry in out.iterdir():
            if entry not in kept:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    ensure_folder(out)
    return [p.name + ("/" if p.is_dir() else "") for p in kept]


def write_config(out: Path, cfg: TrainConfig, data: ImageData) -> None:
    record: dict[str, Any] = {
        **cfg.to_dict(),
        "data": {
            "name": data.name,
            "image_shape": list(data.image_shape),
            "train_images": len(data.train),
            "test_images": len(data.test),
            "split": data.split,
            "source": data.source,
            "skipped_images": data.skipped,
            "holdout_images": 0 if data.holdout is None else len(data.holdout),
            "classes": None if data.classes is None else list(data.classes),
            "label_notes": data.notes,
        },
        "versions": package_versions("vaeport", "torch", "numpy"),
    }
    text = json.dumps(record, indent=2) + "\n"
    atomic_write_text(out / CONFIG_FILE, text)


def read_config(run_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The TrainConfig of a run folder and the raw record (with data and versions)."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise InputError(f"expected a run folder at {run_dir}, got no such folder")
    if not path.is_file():
        raise InputError(f"expected {path} in the run folder, got no such file")
    try:
        record = json.loads(path.read_text())
        return TrainConfig.from_dict(record), record
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: expected a vaeport run config, got an unreadable one ({exc})") from exc


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """One dict per finished epoch, from metrics.jsonl (empty before the first epoch ends)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: expected one JSON object per line, got an unreadable line ({exc})") from exc


@dataclass(frozen=True)
class Run:
    """A run folder: what `fit` returns and what `evaluate` and `export` take."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """A handle on an existing run folder (its config.json is read and checked)."""
        read_config(Path(path))
        return cls(Path(path))

    @property
    def config(self) -> TrainConfig:
        return read_config(self.path)[0]

    @property
    def record(self) -> dict[str, Any]:
        """config.json as written: the config plus the data summary and versions."""
        return read_config(self.path)[1]

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def checkpoint(self, which: str = "last") -> Path:
        """Path of `last.pt` or `best.pt`."""
        return self.path / {"last": LAST, "best": BEST}[which]

    @classmethod
    def finished(cls, path: str | Path, config: TrainConfig) -> bool:
        """True when `path` holds a finished run of exactly this config (all its epochs and last.pt)."""
        try:
            run = cls.open(path)
            return run.config == config and len(run.metrics) == config.epochs and run.checkpoint("last").exists()
        except (OSError, ValueError):
            return False
