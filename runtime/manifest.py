"""Read and verify a model folder's manifest (vae.json): format, hashes, graph files.

Nothing in a model folder is used before its sha256 matches the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vaeport.runtime.errors import ModelFolderError
from vaeport.runtime.files import FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE
from vaeport.runtime.hashing import sha256_bytes
from vaeport.runtime.onnx_scan import external_locations

LOADABLE_SUFFIXES = {".onnx", ".data", ".bin", ".ort"}
VARIANTS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Manifest:
    """The parsed vae.json of one model folder."""

    folder: Path
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.data["model"]["kind"]

    @property
    def latent_dim(self) -> int:
        return int(self.data["model"]["latent_dim"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        image = self.data["image"]
        return (int(image["channels"]), int(image["height"]), int(image["width"]))

    @property
    def variants(self) -> list[str]:
        return list(self.data["graphs"])

    def graph_file(self, variant: str, part: str) -> str:
        if variant not in self.data["graphs"]:
            raise ModelFolderError(
                f"{self.folder}: expected variant {variant!r} to be one of {', '.join(self.variants)}"
            )
        return self.data["graphs"][variant][part]

    def file_spec(self, name: str) -> dict[str, Any]:
        return self.data["files"][name]


def safe_relative(folder: Path, name: str) -> Path:
    """folder/name, refusing absolute paths and any that leave the folder."""
    pure = PurePosixPath(name)
    resolved = (folder / name).resolve()
    if pure.is_absolute() or ".." in pure.parts or not resolved.is_relative_to(folder.resolve()):
        raise ModelFolderError(f"{folder}: expected file paths inside the model folder, got {name!r}")
    return resolved


def read_manifest(folder: Path) -> Manifest:
    """Parse vae.json and check its format and version (no file hashing)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"expected a model folder at {folder}, got no such folder")
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ModelFolderError(f"expected {MANIFEST_FILE} in {folder}, got no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{path}: expected JSON, got an unreadable file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ModelFolderError(f"{path}: expected a {FORMAT_NAME} manifest, got another kind of file")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: expected format_version {FORMAT_VERSION}, got {data.get('format_version')!r} "
            "(made by a newer or older vaeport?)"
        )
    for key in ("model", "image", "graphs", "files"):
        if key not in data:
            raise ModelFolderError(f"{path}: expected a '{key}' section, got none")
    return Manifest(folder, data)


def read_verified(manifest: Manifest, name: str) -> bytes:
    """The bytes of a listed file, after checking its sha256 and its external-data references."""
    spec = manifest.data["files"].get(name)
    if spec is None:
        raise ModelFolderError(f"{manifest.folder}: expected {name!r} to be listed in {MANIFEST_FILE}")
    path = safe_relative(manifest.folder, name)
    if not path.is_file():
        raise ModelFolderError(f"{manifest.folder}: expected {name}, got no such file")
    data = path.read_bytes()
    got = sha256_bytes(data)
    if got != spec["sha256"]:
        raise ModelFolderError(
            f"{path}: expected sha256 {spec['sha256']}, got {got} (the file was changed after export)"
        )
    if name.endswith(".onnx"):
        for location in external_locations(data):
            safe_relative(manifest.folder, location)
            if location not in manifest.data["files"]:
                raise ModelFolderError(
                    f"{path}: expected external data files listed in {MANIFEST_FILE}, got {location!r}"
                )
    return data


def check_folder_contents(manifest: Manifest) -> None:
    """Every listed file exists; no unlisted graph or weight file sits beside them."""
    listed = set(manifest.data["files"])
    for name in listed:
        path = safe_relative(manifest.folder, name)
        if not path.is_file():
            raise ModelFolderError(f"{manifest.folder}: expected {name} (listed in {MANIFEST_FILE}), got no such file")
    for path in manifest.folder.iterdir():
        if path.suffix in LOADABLE_SUFFIXES and path.name not in listed:
            raise ModelFolderError(
                f"{manifest.folder}: expected only the files listed in {MANIFEST_FILE}, got an extra {path.name}"
            )


def verify_folder(folder: Path) -> Manifest:
    """Read the manifest and check every listed file's hash; returns the manifest."""
    manifest = read_manifest(folder)
    check_folder_contents(manifest)
    for name in manifest.data["files"]:
        read_verified(manifest, name)
    return manifest
