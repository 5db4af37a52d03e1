"""Find the (Fashion-)MNIST IDX files on disk, or download them into a cache with sha256 checks.

Checksums are of the decompressed IDX bytes, so a recompressed copy (Debian's package, say)
verifies the same as the original download.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vaeport.runtime.errors import InputError
from vaeport.runtime.idx import sha256_of_payload

SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxDataset:
    """Where an IDX data set is published and what its files must hash to."""

    name: str
    mirrors: tuple[str, ...]  # base URLs; `<base><file>.gz` is fetched
    sha256: dict[str, str]  # file stem -> sha256 of its decompressed bytes
    license: str


IDX_DATASETS = {
    "fashion-mnist": IdxDataset(
        name="fashion-mnist",
        mirrors=(
            "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        license="MIT (Zalando SE)",
    ),
    "mnist": IdxDataset(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        license="CC BY-SA 3.0 (Y. LeCun, C. Cortes)",
    ),
}


def cache_dir() -> Path:
    """Where downloads go: $VAEPORT_CACHE, else ~/.cache/vaeport."""
    return Path(os.environ.get("VAEPORT_CACHE", Path.home() / ".cache" / "vaeport"))


def candidate_dirs(name: str, data_dir: Path | None) -> list[Path]:
    """Every folder searched for the IDX files of `name`, in order."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir), Path(data_dir) / name]
    if os.environ.get("VAEPORT_DATA"):
        base = Path(os.environ["VAEPORT_DATA"])
        dirs += [base, base / name]
    dirs += [Path("/usr/share/datasets") / name, cache_dir() / name]
    return dirs


def find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def find_complete_set(folder: Path) -> dict[str, Path] | None:
    found = {key: find_file(folder, stem) for key, stem in SPLIT_FILES.items()}
    if all(found.values()):
        return found  # type: ignore[return-value]
    return None


def download_file(url: str, dest: Path, expected_sha256: str, timeout: float = 60.0) -> None:
    """Download `url` to `dest` via a temporary file in the same folder; verify, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        got = sha256_of_payload(tmp)
        if got != expected_sha256:
            raise InputError(f"{url}: expected sha256 {expected_sha256}, got {got}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download_set(spec: IdxDataset, folder: Path, mirrors: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Download the four files of `spec` into `folder`, trying each mirror in turn."""
    errors: list[str] = []
    for base in mirrors or spec.mirrors:
        try:
            paths = {}
            for key, stem in SPLIT_FILES.items():
                dest = folder / f"{stem}.gz"
                if not dest.is_file():
                    download_file(f"{base}{stem}.gz", dest, spec.sha256[stem])
                paths[key] = dest
            return paths
        except (urllib.error.URLError, OSError, InputError) as exc:
            errors.append(f"{base}: {exc}")
    raise InputError("; ".join(errors))


def locate_idx_files(name: str, data_dir: Path | None = None, allow_download: bool = True) -> dict[str, Path]:
    """Find the four IDX files of `name` locally, else download them; errors list every place tried."""
    spec = IDX_DATASETS[name]
    searched = candidate_dirs(name, data_dir)
    for folder in searched:
        found = find_complete_set(folder)
        if found:
            return found
    tried = ", ".join(str(d) for d in searched)
    if not allow_download or os.environ.get("VAEPORT_OFFLINE") == "1":
        raise InputError(
            f"expected the four {name} IDX files ({', '.join(SPLIT_FILES.values())}[.gz]) "
            f"in one of: {tried}; found none and downloads are off"
        )
    try:
        return download_set(spec, cache_dir() / name)
    except InputError as exc:
        raise InputError(
            f"expected the four {name} IDX files in one of: {tried}; found none, and the download failed: {exc}"
        ) from exc
