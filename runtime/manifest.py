"""Read and verify a model folder's manifest (vae.json): format, hashes, graph files, graph I/O.

Nothing in a model folder is used before its sha256 matches the manifest, and a manifest that
disagrees with its own graphs is refused at load (docs/model-format.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vaeport.runtime.distributions import DEFAULT_PRIOR, PRIORS
from vaeport.runtime.errors import ModelFolderError
from vaeport.runtime.families import FAMILIES, IO, PRIOR_ROLES, Family, Shapes, family, find_role, model_role_names
from vaeport.runtime.files import FORMAT_NAME, MANIFEST_FILE, SUPPORTED_FORMAT_VERSIONS, VARIANTS, VQ_FORMAT_VERSION
from vaeport.runtime.hashing import sha256_bytes
from vaeport.runtime.onnx_scan import external_locations
from vaeport.runtime.scoring import Calibration

SUPPORTED_TEXT = ", ".join(map(str, SUPPORTED_FORMAT_VERSIONS[:-1])) + f" or {SUPPORTED_FORMAT_VERSIONS[-1]}"
LOADABLE_SUFFIXES = {".onnx", ".data", ".bin", ".ort"}
LIKELIHOODS = ("bernoulli", "gaussian")


def positive_int(value: Any) -> bool:
    return type(value) is int and value > 0


@dataclass(frozen=True)
class Manifest:
    """The parsed vae.json of one model folder, with typed access to what callers need.
    `data` is the whole record as written."""

    folder: Path
    data: dict[str, Any]

    @property
    def format_version(self) -> int:
        return self.data["format_version"]

    @property
    def name(self) -> str | None:
        return self.data.get("name")

    @property
    def kind(self) -> str:
        """ "vae" or "ae" (the plain autoencoder baseline)."""
        return self.data["model"]["kind"]

    @property
    def family(self) -> Family:
        """The model family (runtime/families.py): its graph roles and posterior."""
        return family(self.kind)

    @property
    def roles(self) -> tuple[str, ...]:
        """The graph roles every variant of this folder holds, in order: the family's (encoder,
        decoder), then the prior's (prior_sample, prior_log_prob for a learned prior)."""
        return model_role_names(self.kind, self.prior)

    @property
    def variational(self) -> bool:
        return self.family.variational

    @property
    def prior(self) -> str:
        """The prior p(z) by name (runtime/distributions.py); folders without one used N(0, I)."""
        return self.data["model"].get("prior", DEFAULT_PRIOR)

    @property
    def latent_dim(self) -> int:
        return self.data["model"]["latent_dim"]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        image = self.data["image"]
        return (image["channels"], image["height"], image["width"])

    @property
    def likelihood(self) -> str:
        return self.data["model"]["likelihood"]

    @property
    def gaussian_scale(self) -> float | None:
        """The learned sigma of a Gaussian likelihood; None for Bernoulli."""
        return self.data["model"].get("gaussian_scale")

    @property
    def beta(self) -> float | None:
        return self.data["model"].get("beta")

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Class names of a conditional model by label index (format_version 2); None for an
        unconditional one (and every version 1 folder)."""
        classes = self.data.get("classes") if self.format_version >= 2 else None
        return None if classes is None else tuple(classes)

    @property
    def class_counts(self) -> tuple[int, ...] | None:
        """Training images per class of a conditional model (its prior p(y)); None if unrecorded."""
        counts = self.data.get("class_counts") if self.classes is not None else None
        return None if counts is None else tuple(counts)

    @property
    def opset(self) -> int | None:
        return self.data.get("opset")

    @property
    def variants(self) -> list[str]:
        return list(self.data["graphs"])

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.data["files"]

    @property
    def training(self) -> dict[str, Any]:
        """How the model was trained: the whole training config, data set, epochs, curves."""
        return self.data.get("training") or {}

    @property
    def parity(self) -> dict[str, Any]:
        return self.data.get("parity") or {}

    @property
    def versions(self) -> dict[str, str]:
        return self.data.get("versions") or {}

    def calibration(self) -> Calibration | None:
        """The default anomaly score's calibration (the `scoring` section), or None."""
        section = self.data.get("scoring")
        return None if section is None else Calibration.from_dict(section, f"{self.folder / MANIFEST_FILE}: scoring")

    def graph_file(self, variant: str, part: str) -> str:
        if variant not in self.data["graphs"]:
            raise ModelFolderError(
                f"{self.folder}: expected variant {variant!r} to be one of {', '.join(self.variants)}"
            )
        return self.data["graphs"][variant][part]

    def file_spec(self, name: str) -> dict[str, Any]:
        return self.data["files"][name]

    def expected_io(self, role: str) -> tuple[IO, IO]:
        """(inputs, outputs) that the graph of `role` must have, from the image shape and latent_dim."""
        return find_role(self.kind, self.prior, role).io(self.shapes)

    @property
    def shapes(self) -> Shapes:
        """What the graphs' I/O depends on: the image shape, latent size, classes and (a VQ-VAE) codes."""
        model = self.data["model"]
        if self.kind != "vqvae":
            return Shapes(self.image_shape, self.latent_dim, self.classes is not None)
        return Shapes(
            self.image_shape,
            self.latent_dim,
            self.classes is not None,
            tuple(model["code_grid"]),
            model["codebook_size"],
            tuple(model["prior_cache"]),
        )


def positive_ints(value: Any, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and all(positive_int(v) for v in value)


def vq_checks(model: dict[str, Any], version: Any) -> list[tuple[str, Any, bool, str]]:
    """A VQ-VAE's fields: (field, value, ok, expected) as check_fields reports them."""
    size = model.get("codebook_size")
    return [
        ("format_version", version, version == VQ_FORMAT_VERSION, f"{VQ_FORMAT_VERSION} for a VQ-VAE"),
        ("model.code_grid", model.get("code_grid"), positive_ints(model.get("code_grid"), 2), "[h, w], positive"),
        ("model.codebook_size", size, positive_int(size) and size >= 2, "an integer of at least 2"),
        ("model.prior_cache", model.get("prior_cache"), positive_ints(model.get("prior_cache"), 4),
         "[layers, heads, positions, head_dim] of positive sizes"),
    ]


def check_fields(path: Path, data: dict[str, Any]) -> None:
    """The fields the runtime relies on have the right types (one line naming the first that does not)."""
    for key in ("model", "image", "graphs", "files"):
        if not isinstance(data.get(key), dict):
            raise ModelFolderError(f"{path}: expected a '{key}' section, got {data.get(key)!r}")
    model, image = data["model"], data["image"]
    checks = [
        ("model.kind", model.get("kind"), model.get("kind") in FAMILIES, f"one of {', '.join(FAMILIES)}"),
        ("model.prior", model.get("prior", DEFAULT_PRIOR), model.get("prior", DEFAULT_PRIOR) in PRIORS,
         f"one of {', '.join(PRIORS)}"),
        ("model.likelihood", model.get("likelihood"), model.get("likelihood") in LIKELIHOODS, "bernoulli or gaussian"),
        ("model.latent_dim", model.get("latent_dim"), positive_int(model.get("latent_dim")), "a positive integer"),
    ]
    for key in ("channels", "height", "width"):
        checks.append((f"image.{key}", image.get(key), positive_int(image.get(key)), "a positive integer"))
    if model.get("kind") == "vqvae":
        checks += vq_checks(model, data["format_version"])
    if model.get("likelihood") == "gaussian":
        scale = model.get("gaussian_scale")
        ok = isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0
        checks.append(("model.gaussian_scale", scale, ok, "a positive number"))
    if data["format_version"] >= 2:
        classes, counts = data.get("classes"), data.get("class_counts")
        names_ok = classes is None or (
            isinstance(classes, list)
            and len(classes) >= 1
            and all(isinstance(c, str) and c for c in classes)
            and len(set(classes)) == len(classes)
        )
        checks.append(("classes", classes, names_ok, "null or a list of distinct non-empty class names"))
        counts_ok = counts is None or (
            isinstance(classes, list)
            and isinstance(counts, list)
            and len(counts) == len(classes)
            and all(type(c) is int and c >= 0 for c in counts)
        )
        checks.append(("class_counts", counts, counts_ok, "null or one count per class"))
    for field, value, ok, expected in checks:
        if not ok:
            raise ModelFolderError(f"{path}: expected {field} to be {expected}, got {value!r}")
    prior = model.get("prior", DEFAULT_PRIOR)
    if PRIOR_ROLES.get(prior) and data["format_version"] < 3:
        version = data["format_version"]
        raise ModelFolderError(f"{path}: expected format_version 3 for the {prior} prior's graphs, got {version}")
    roles = model_role_names(model["kind"], prior)
    for variant, parts in data["graphs"].items():
        if variant not in VARIANTS or not isinstance(parts, dict) or set(parts) != set(roles):
            raise ModelFolderError(
                f"{path}: expected graphs.{variant} to be a variant of {', '.join(VARIANTS)} naming "
                f"a file for each of {', '.join(roles)}, got {parts!r}"
            )
    if "fp32" not in data["graphs"]:
        raise ModelFolderError(f"{path}: expected an fp32 entry in graphs, got {', '.join(data['graphs'])}")


def safe_relative(folder: Path, name: str) -> Path:
    """folder/name, refusing absolute paths and any that leave the folder."""
    pure = PurePosixPath(name)
    resolved = (folder / name).resolve()
    if pure.is_absolute() or ".." in pure.parts or not resolved.is_relative_to(folder.resolve()):
        raise ModelFolderError(f"{folder}: expected file paths inside the model folder, got {name!r}")
    return resolved


def read_manifest(folder: Path) -> Manifest:
    """Parse vae.json and check its format, version and field types (no file hashing)."""
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
    version = data.get("format_version")
    # `type(...) is int`: true and 1.0 compare equal to 1 but are not a version this runtime wrote.
    if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelFolderError(
            f"{path}: expected format_version to be the integer {SUPPORTED_TEXT}, got {version!r} "
            "(made by a newer or older vaeport?)"
        )
    check_fields(path, data)
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


def describe_io(pairs: IO) -> str:
    return ", ".join(f"{name} [{','.join(str(d) for d in shape)}]" for name, shape in pairs)


def swapped_pair(manifest: Manifest, a: str, b: str) -> str:
    """ "encoder and decoder": two roles in the family's order."""
    return " and ".join(role for role in manifest.roles if role in (a, b))


def check_graph_io(manifest: Manifest, name: str, role: str, inputs: IO, outputs: IO) -> None:
    """A graph's own inputs and outputs (symbolic sizes as "N") must be those its role needs
    given the manifest's image shape and latent_dim, and those its `files` entry lists."""
    want_in, want_out = manifest.expected_io(role)
    if (inputs, outputs) != (want_in, want_out):
        others = [other for other in manifest.roles if other != role and inputs == manifest.expected_io(other)[0]]
        raise ModelFolderError(
            f"{manifest.folder / name}: expected the {role} graph, {describe_io(want_in)} -> "
            f"{describe_io(want_out)} (image {'x'.join(map(str, manifest.image_shape))}, latent_dim "
            f"{manifest.latent_dim} in {MANIFEST_FILE}), got {describe_io(inputs)} -> {describe_io(outputs)}"
            + (f" (is it the {others[0]}? {swapped_pair(manifest, role, others[0])} look swapped)" if others else "")
        )
    spec = manifest.file_spec(name)
    listed = tuple(
        [(v["name"], [d if isinstance(d, int) else "N" for d in v["shape"]]) for v in spec.get(key, [])]
        for key in ("inputs", "outputs")
    )
    if listed != (inputs, outputs):
        raise ModelFolderError(
            f"{manifest.folder / name}: expected inputs/outputs {describe_io(listed[0])} -> "
            f"{describe_io(listed[1])} as listed in {MANIFEST_FILE}, "
            f"got {describe_io(inputs)} -> {describe_io(outputs)}"
        )


def verify_folder(folder: Path) -> Manifest:
    """Read the manifest and check every listed file's hash; returns the manifest."""
    manifest = read_manifest(folder)
    check_folder_contents(manifest)
    for name in manifest.data["files"]:
        read_verified(manifest, name)
    return manifest
