"""Images from files, for the runtime's commands: a folder of PNG/JPEG files, an `.npy` array, or an
IDX file. Yields batches (names, float32 [B,C,H,W] in [0, 1]) so that any number of images is read
with flat memory (`.npy` files are memory-mapped). Decoding PNG/JPEG needs Pillow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vaeport.runtime.errors import InputError, MissingExtraError
from vaeport.runtime.idx import read_idx
from vaeport.runtime.inputs import describe

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GRAY_MODES = ("L", "1", "I;16", "I;16B", "I;16L", "I")
WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I")  # 16-bit grayscale PNGs open as one of these
IDX_SUFFIXES = ("-ubyte", "-ubyte.gz", ".idx", ".idx.gz")
Batches = Iterator[tuple[list[str], np.ndarray]]


def read_image(file: Path) -> tuple[np.ndarray, bool]:
    """(pixels [C,H,W] uint8, whether the file is grayscale); decoded in full so that a truncated
    or corrupt file fails here, named, rather than later."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingExtraError(
            "reading PNG/JPEG files needs Pillow (pip install 'vaeport[images]' or pip install pillow)"
        ) from exc
    with Image.open(file) as im:
        im.load()
        gray = im.mode in GRAY_MODES
        if im.mode in WIDE_GRAY_MODES:
            # Pillow's convert("L") clips 16-bit values at 255 (every pixel above 255/65535 turns
            # white): scale by the bit depth instead.
            pixels = to_8_bit(np.asarray(im), file)
        else:
            pixels = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)
    return (pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)), gray


def to_8_bit(wide: np.ndarray, file: Path) -> np.ndarray:
    """16-bit gray levels (0..65535) -> the nearest 8-bit ones (0..255)."""
    if wide.size and (wide.min() < 0 or wide.max() > 65535):
        raise InputError(f"{file}: expected 16-bit gray levels 0..65535, got {wide.min()}..{wide.max()}")
    return np.rint(wide.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def image_files(folder: Path) -> list[Path]:
    """The PNG/JPEG files under `folder`, sorted; hidden files and folders (macOS `._*` metadata,
    `.git`, ...) are not images of the data set."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def to_model_float(array: np.ndarray, what: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 or float [0,1] images of the model's shape ([N,H,W] allowed for one channel) -> float32."""
    batch = array[:, None] if array.ndim == 3 and image_shape[0] == 1 else array
    if batch.ndim != 4 or tuple(batch.shape[1:]) != tuple(image_shape):
        c, h, w = image_shape
        raise InputError(
            f"{what}: expected images [N,{c},{h},{w}] (or [N,{h},{w}] for one channel), got {describe(array)}"
        )
    if batch.dtype == np.uint8:
        return batch.astype(np.float32) / np.float32(255.0)
    if batch.dtype.kind != "f":
        raise InputError(f"{what}: expected uint8 or float images in [0, 1], got {batch.dtype}")
    out = np.asarray(batch, dtype=np.float32)
    if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
        raise InputError(f"{what}: expected finite float values in [0, 1], got values outside")
    return out


def fitted(pixels: np.ndarray, file: Path, image_shape: tuple[int, int, int], resize: bool) -> np.ndarray:
    """A decoded image [C,H,W] uint8 in the model's channels and size (resized only when asked)."""
    from PIL import Image

    c, h, w = image_shape
    if pixels.shape[0] != c:  # gray <-> RGB as the model needs
        pixels = np.repeat(pixels, 3, axis=0) if c == 3 else np.rint(pixels.mean(axis=0, keepdims=True))
    if pixels.shape[1:] != (h, w):
        if not resize:
            raise InputError(
                f"{file}: expected a {w}x{h} image for this model, got {pixels.shape[2]}x{pixels.shape[1]} "
                "(--resize fits images to the model)"
            )
        im = Image.fromarray(pixels[0].astype(np.uint8) if c == 1 else pixels.transpose(1, 2, 0).astype(np.uint8))
        resized = np.asarray(im.resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8)
        pixels = resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)
    return pixels.astype(np.uint8)


def folder_batches(
    folder: Path,
    files: list[Path],
    image_shape: tuple[int, int, int],
    batch: int,
    skipped: list[str] | None = None,
    resize: bool = False,
) -> Batches:
    """Batches of the files' images. An unreadable or wrong-size file stops with its name, or, when
    a `skipped` list is given, is left out and recorded there (name: reason)."""
    for start in range(0, len(files), batch):
        names, arrays = [], []
        for file in files[start : start + batch]:
            name = str(file.relative_to(folder)) if file != folder else file.name
            try:
                pixels, _ = read_image(file)
            except MissingExtraError:
                raise
            except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ... for bad files
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if skipped is None:
                    raise InputError(
                        f"{file}: expected a readable PNG/JPEG image, got an unreadable file ({reason}); "
                        "--skip-bad-images leaves such files out"
                    ) from exc
                skipped.append(f"{name}: {reason}")
                continue
            try:
                pixels = fitted(pixels, file, image_shape, resize)
            except InputError as exc:
                if skipped is None:
                    raise
                skipped.append(f"{name}: {str(exc).split(': ', 1)[-1]}")
                continue
            names.append(name)
            arrays.append(pixels)
        if arrays:
            yield names, np.stack(arrays).astype(np.float32) / np.float32(255.0)


def array_batches(array: np.ndarray, what: str, image_shape: tuple[int, int, int], batch: int) -> Batches:
    for start in range(0, len(array), batch):
        part = np.asarray(array[start : start + batch])
        yield [str(i) for i in range(start, start + len(part))], to_model_float(part, what, image_shape)


def image_batches(
    path: Path,
    image_shape: tuple[int, int, int],
    batch: int = 1024,
    skipped: list[str] | None = None,
    resize: bool = False,
) -> tuple[int, Batches]:
    """(how many images, batches of (names, images)) from a folder (names: paths inside it), one
    PNG/JPEG file, an .npy or an IDX file (names: indices). PNG/JPEG files that cannot be read or
    are not the model's size are refused, or left out into `skipped` when it is given; `resize`
    fits them to the model's size instead."""
    path = Path(path)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise InputError(f"{path}: expected PNG/JPEG images, found none")
        return len(files), folder_batches(path, files, image_shape, batch, skipped, resize)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return 1, folder_batches(path, [path], image_shape, batch, skipped, resize)
    if not path.is_file():
        raise InputError(
            f"{path}: expected a folder of images, an image file, an .npy file or an IDX file, got no such path"
        )
    if path.suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"{path}: expected an .npy array, got an unreadable file ({exc})") from exc
    elif path.name.endswith(IDX_SUFFIXES):
        array = read_idx(path)
    else:
        raise InputError(
            f"{path}: expected a folder of images, a PNG/JPEG file, an .npy file or an IDX file (*-ubyte[.gz]), "
            "got another file"
        )
    if array.ndim not in (3, 4) or len(array) == 0:
        raise InputError(f"{path}: expected an array of images [N,H,W] or [N,C,H,W], got {describe(array)}")
    return len(array), array_batches(array, str(path), image_shape, batch)
