"""Data sources: `digits`, `fashion-mnist`, `mnist`, `dsprites`, `folder:PATH`, `npy:PATH`.

Every source returns an `ImageData` of arrays `(N, C, H, W)`: float32 in [0, 1], or uint8 read as
value / 255 (dsprites, whose 737,280 images would take 12 GB as float32;
`vaeport.runtime.inputs.unit_images` converts a batch). numpy only, so the data can also feed the
torch-free evaluation path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vaeport.runtime.errors import InputError, require_module
from vaeport.runtime.idx import read_idx
from vaeport.runtime.image_files import image_files, read_image
from vaeport.runtime.inputs import describe
from vaeport.train.dsprites import DEFAULT_SIZE, DSPRITES, SHAPES, SIZES, dsprites_images
from vaeport.train.fetch import IDX_DATASETS, locate_idx_files

BUILTIN = ("digits", "fashion-mnist", "mnist", "dsprites")
DIGIT_NAMES = tuple(str(d) for d in range(10))
CLASS_NAMES = {
    "digits": DIGIT_NAMES,
    "mnist": DIGIT_NAMES,
    "dsprites": SHAPES,
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}
LABELS_SUFFIX = ".labels.npy"  # npy:images.npy reads its labels from images.labels.npy when present
CLASSES_SUFFIX = ".classes.txt"  # ... and its class names, one per line, from images.classes.txt
TEST_FRACTION = 0.1
HOLDOUT_STREAM = 5  # the hold-out's permutation draws from its own seeded stream


@dataclass
class ImageData:
    """A data set held in memory as one array per split."""

    name: str
    train: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    test: np.ndarray  # (M, C, H, W) float32 in [0, 1]
    train_labels: np.ndarray | None
    test_labels: np.ndarray | None
    split: str  # "official" or how the test split was drawn
    source: str  # where the data came from
    skipped: list[str] = field(default_factory=list)  # folder: unreadable files left out (--skip-bad-images)
    holdout: np.ndarray | None = None  # (K, C, H, W) training images kept out of training (--holdout)
    holdout_labels: np.ndarray | None = None  # (K,) their labels
    classes: tuple[str, ...] | None = None  # class names by label index; None without labels
    notes: list[str] = field(default_factory=list)  # why the labels were left out, when they were
    factors: str | None = None  # the ground-truth factor grid (train/dsprites.py FACTOR_GRIDS) it was drawn from

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.shape[1:]
        return (int(c), int(h), int(w))


def seeded_split(
    images: np.ndarray, labels: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Split 90/10 with a permutation drawn from `seed`."""
    n = len(images)
    if n < 2:
        raise InputError(f"expected at least 2 images to split into train and test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(TEST_FRACTION * n))
    test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
    if labels is None:
        return images[train_idx], images[test_idx], None, None
    return images[train_idx], images[test_idx], labels[train_idx], labels[test_idx]


def to_unit_float(array: np.ndarray, name: str) -> np.ndarray:
    """uint8 -> /255; float -> checked to be finite and in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise InputError(f"{name}: expected finite values in [0, 1], got NaN or Inf")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(f"{name}: expected values in [0, 1], got range [{lo:g}, {hi:g}]")
        return array
    raise InputError(f"{name}: expected uint8 or float images, got {array.dtype}")


def load_digits(seed: int) -> ImageData:
    require_module("sklearn", "train", "the built-in digits data set (scikit-learn)")
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None]  # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    train, test, ytr, yte = seeded_split(images, labels, seed)
    split = f"seeded 90/10 (seed {seed})"
    return ImageData("digits", train, test, ytr, yte, split, "scikit-learn", classes=CLASS_NAMES["digits"])


def load_dsprites(image_size: int | None, seed: int) -> ImageData:
    """The whole dSprites factor grid, rendered at image_size (default 64), split 90/10 by `seed`;
    the labels are the shapes."""
    size = DEFAULT_SIZE if image_size is None else image_size
    if size not in SIZES:
        raise InputError(f"dsprites: expected --image-size {', '.join(map(str, SIZES))}, got {size}")
    factors = DSPRITES.all_factors()
    order = np.random.default_rng(seed).permutation(len(factors))
    n_test = round(TEST_FRACTION * len(factors))
    test, train = factors[np.sort(order[:n_test])], factors[np.sort(order[n_test:])]
    return ImageData(
        "dsprites",
        dsprites_images(train, size),
        dsprites_images(test, size),
        train[:, 0].copy(),
        test[:, 0].copy(),
        f"seeded 90/10 (seed {seed})",
        f"rendered by vaeport (train/dsprites.py, {size}x{size})",
        classes=SHAPES,
        factors="dsprites",
    )


def load_idx_dataset(name: str, data_dir: Path | None) -> ImageData:
    paths = locate_idx_files(name, data_dir)
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise InputError(
                f"{paths[split + '_images']}: expected images [N,H,W] and N labels, "
                f"got {list(images.shape)} and {list(labels.shape)}"
            )
    folder = paths["train_images"].parent
    labels = {split: arrays[f"{split}_labels"].astype(np.int64) for split in ("train", "test")}
    classes = CLASS_NAMES[name]
    for split, values in labels.items():
        check_labels(values, len(classes), str(paths[f"{split}_labels"]))
    return ImageData(
        name,
        to_unit_float(arrays["train_images"], name)[:, None],
        to_unit_float(arrays["test_images"], name)[:, None],
        labels["train"],
        labels["test"],
        "official",
        str(folder),
        classes=classes,
    )


def load_folder(
    path: Path, image_size: int | None, seed: int, skip_bad: bool = False, strict_labels: bool = True
) -> ImageData:
    """PNG/JPEG files under `path`; first-level subfolders, when every image has one, are classes
    (every subfolder, so an empty one is a class without images; numeric names in numeric order).

    An unreadable image (truncated, corrupt, not an image at all) is refused with its name, or with
    skip_bad left out and listed in `ImageData.skipped`."""
    from PIL import Image

    if not path.is_dir():
        raise InputError(f"folder:{path}: expected a folder of PNG/JPEG images, got no such folder")
    files = image_files(path)
    if not files:
        raise InputError(f"folder:{path}: expected PNG/JPEG images, found none")
    decoded, kept, skipped = [], [], []
    for file in files:
        try:
            decoded.append(read_image(file))
            kept.append(file)
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ... for bad files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not skip_bad:
                raise InputError(
                    f"folder:{path}: expected readable PNG/JPEG images, got {file.relative_to(path)} "
                    f"({reason}); remove it or pass --skip-bad-images"
                ) from exc
            skipped.append(f"{file.relative_to(path)}: {reason}")
    if not kept:
        raise InputError(f"folder:{path}: expected readable PNG/JPEG images, got {len(skipped)} unreadable ones")
    rgb = not all(gray for _, gray in decoded)
    first_size = decoded[0][0].shape[1:]
    arrays = []
    for file, (pixels, _) in zip(kept, decoded, strict=True):
        if image_size is None and pixels.shape[1:] != first_size:
            raise InputError(
                f"folder:{path}: expected images of one size (or --image-size), got "
                f"{first_size[1]}x{first_size[0]} ({kept[0].name}) and "
                f"{pixels.shape[2]}x{pixels.shape[1]} ({file.name})"
            )
        if rgb and pixels.shape[0] == 1:
            pixels = np.repeat(pixels, 3, axis=0)
        if image_size is not None and pixels.shape[1:] != (image_size, image_size):
            im = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
            resized = np.asarray(im.resize((image_size, image_size), Image.Resampling.LANCZOS), dtype=np.uint8)
            pixels = resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)
        arrays.append(pixels)
    stacked = to_unit_float(np.stack(arrays), f"folder:{path}")
    labels, classes, error = None, None, None
    parts = [f.relative_to(path).parts for f in kept]
    folders = {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    stray = [str(Path(*p)) for p in parts if len(p) == 1]
    if folders and stray:
        error = LabelError(
            f"folder:{path}: expected every image in a class folder, got {len(stray)} at the top level "
            f"({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''}): move them into a class folder"
        )
        if strict_labels:
            raise error
    elif folders:
        classes = class_order(folders)
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index[p[0]] for p in parts], dtype=np.int64)
    train, test, ytr, yte = seeded_split(stacked, labels, seed)
    split = f"seeded 90/10 (seed {seed})"
    data = ImageData(f"folder:{path}", train, test, ytr, yte, split, str(path), skipped, classes=classes)
    return data if error is None else unlabelled(data, error)


class LabelError(InputError):
    """The data set's labels cannot be used: fatal for a conditional run, a note for any other."""


def check_labels(labels: np.ndarray, classes: int, name: str) -> None:
    """Integer labels in 0..classes-1, one per image."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise LabelError(f"{name}: expected labels as a 1-D integer array, got {describe(labels)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise LabelError(
            f"{name}: expected labels in 0..{classes - 1} ({classes} classes), "
            f"got values in {int(labels.min())}..{int(labels.max())}"
        )


def sidecar(path: Path, suffix: str) -> Path:
    """images.npy -> images<suffix> in the same folder."""
    return path.with_name(path.name[: -len(".npy")] + suffix if path.name.endswith(".npy") else path.name + suffix)


def read_npy(path: Path, what: str, name: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{name}: expected {what}, got an unreadable file ({exc})") from exc


def npy_labels(path: Path, n: int) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """The labels of npy:path from its sidecar files, if it has them: `X.labels.npy` (N integers
    0..K-1) and optionally `X.classes.txt` (K class names, one per line; default "0".."K-1")."""
    labels_path, classes_path = sidecar(path, LABELS_SUFFIX), sidecar(path, CLASSES_SUFFIX)
    if not labels_path.is_file():
        if classes_path.is_file():
            raise InputError(f"{classes_path}: expected {labels_path.name} beside it, got no such file")
        return None, None
    try:
        labels = read_npy(labels_path, "an .npy array of integer labels", str(labels_path))
    except InputError as exc:
        raise LabelError(str(exc)) from exc
    if labels.ndim != 1 or len(labels) != n:
        raise LabelError(f"{labels_path}: expected {n} labels (one per image, shape [{n}]), got {describe(labels)}")
    if labels.dtype.kind not in "iu":
        raise LabelError(
            f"{labels_path}: expected integer class indices 0..K-1 (names go in {classes_path.name}, one per line), "
            f"got {labels.dtype} values"
        )
    if classes_path.is_file():
        names = class_names(classes_path)
    else:
        names = tuple(str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0))
    check_labels(labels, len(names), str(labels_path))
    return labels.astype(np.int64), names


def class_names(path: Path) -> tuple[str, ...]:
    """Class names one per line; a blank line inside would shift every later name, so it is refused."""
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines shift nothing
    blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if blank:
        raise LabelError(f"{path}: expected one class name per line, got a blank line {blank[0]}")
    names = tuple(line.strip() for line in lines)
    if len(set(names)) != len(names) or not names:
        raise LabelError(f"{path}: expected distinct class names, one per line, got {list(names)}")
    return names


def class_order(names: set[str]) -> tuple[str, ...]:
    """Class folder names in label order: numerically when every name is an integer (1, 2, ..., 10,
    not 1, 10, 2), else alphabetically."""
    if names and all(name.isdigit() for name in names):
        return tuple(sorted(names, key=lambda name: (int(name), name)))
    return tuple(sorted(names))


def unlabelled(data: ImageData, error: LabelError) -> ImageData:
    """`data` without labels, saying why (a conditional run refuses it with that reason)."""
    return replace(data, train_labels=None, test_labels=None, classes=None, notes=[*data.notes, str(error)])


def load_npy(path: Path, seed: int, strict_labels: bool = True) -> ImageData:
    """An `.npy` array [N,H,W] or [N,C,H,W], uint8 or float in [0, 1]; labels from the sidecar
    files `npy_labels` reads, when present."""
    if not path.is_file():
        raise InputError(f"npy:{path}: expected an .npy file, got no such file")
    array = read_npy(path, "an .npy array", f"npy:{path}")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise InputError(f"npy:{path}: expected shape [N,H,W] or [N,C,H,W], got {list(array.shape)}")
    images = to_unit_float(array, f"npy:{path}")
    try:
        labels, classes = npy_labels(path, len(images))
        error = None
    except LabelError as exc:
        if strict_labels:
            raise
        labels, classes, error = None, None, exc
    train, test, ytr, yte = seeded_split(images, labels, seed)
    split = f"seeded 90/10 (seed {seed})"
    data = ImageData(f"npy:{path}", train, test, ytr, yte, split, str(path), classes=classes)
    return data if error is None else unlabelled(data, error)


def hold_out(data: ImageData, n: int, seed: int) -> ImageData:
    """`data` with n seeded training images moved out of `train` into `holdout` (n=0: unchanged)."""
    if n == 0:
        return data
    if n >= len(data.train):
        raise InputError(f"expected --holdout below the {len(data.train)} training images of {data.name}, got {n}")
    order = np.random.default_rng([seed, HOLDOUT_STREAM]).permutation(len(data.train))
    keep, held = np.sort(order[n:]), np.sort(order[:n])
    labels = data.train_labels
    return replace(
        data,
        train=data.train[keep],
        train_labels=None if labels is None else labels[keep],
        holdout=data.train[held],
        holdout_labels=None if labels is None else labels[held],
    )


def load_run_data(config: Any, data_dir: str | Path | None = None) -> ImageData:
    """The data of a run, as its TrainConfig (or anything with the same fields) describes it:
    the same split, skipped images and hold-out whoever loads it (training, export). Labels that
    cannot be used stop a conditional run; any other run goes on without them (`notes` says why)."""
    data = load_dataset(
        config.dataset,
        data_dir or config.data_dir,
        config.image_size,
        config.seed,
        skip_bad=config.skip_bad_images,
        strict_labels=bool(config.conditional),
    )
    return hold_out(data, config.holdout, config.seed)


def portable_dataset(spec: str) -> str:
    """The data set spec without machine-specific paths (`folder:/home/me/shoes` -> `folder:shoes`),
    for what travels: model folders and their eval files."""
    for prefix in ("folder:", "npy:"):
        if spec.startswith(prefix):
            return prefix + Path(spec[len(prefix) :]).name
    return spec


def load_dataset(
    spec: str,
    data_dir: Path | str | None = None,
    image_size: int | None = None,
    seed: int = 0,
    skip_bad: bool = False,
    strict_labels: bool = True,
) -> ImageData:
    """Load a data set by its `--dataset` spec. strict_labels=False loads a folder: or npy: data set
    whose labels cannot be used without them, saying why in `notes`, instead of refusing it."""
    if spec == "digits":
        return load_digits(seed)
    if spec == "dsprites":
        return load_dsprites(image_size, seed)
    if spec in IDX_DATASETS:
        return load_idx_dataset(spec, Path(data_dir) if data_dir else None)
    if spec.startswith("folder:"):
        return load_folder(Path(spec[len("folder:") :]), image_size, seed, skip_bad, strict_labels)
    if spec.startswith("npy:"):
        return load_npy(Path(spec[len("npy:") :]), seed, strict_labels)
    raise InputError(f"unknown dataset {spec!r}: expected one of {', '.join(BUILTIN)}, folder:PATH or npy:PATH")
