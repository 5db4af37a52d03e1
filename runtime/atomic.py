"""Write files and folders so that readers see the old content or the new, never half of it.

Temporary names are `.<final name>.<random>.tmp` in the same folder (so the rename is atomic and a
leftover is recognisable by the name it was for). They are created with mode 0666 / 0777 and the
process umask applied by the kernel, so the result has the modes any other file would (0644 and
0755 under umask 022), unlike `tempfile.mkstemp`/`mkdtemp`, which always make them private.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from vaeport.runtime.errors import FileAccessError

TEMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def leftovers(path: Path) -> list[Path]:
    """Temporary files or folders that an interrupted write of `path` left behind."""
    return sorted(path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"))


def remove_leftovers(path: Path) -> int:
    """Delete what interrupted writes of `path` left; returns how many were removed."""
    found = leftovers(path)
    for item in found:
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
    return len(found)


def foreign_entries(folder: Path, ours: set[str]) -> list[Path]:
    """What `folder` holds besides the files named in `ours` and their temporary leftovers: what a
    --force must keep, since this command did not write it."""
    def is_ours(name: str) -> bool:
        return name in ours or any(name.startswith(f".{mine}.") and name.endswith(TEMP_SUFFIX) for mine in ours)

    return sorted(p for p in folder.iterdir() if not is_ours(p.name)) if folder.is_dir() else []


def copy_into(entries: list[Path], folder: Path) -> None:
    """Copy files and folders (with their modes and times) into `folder`."""
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, folder / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, folder / entry.name, follow_symlinks=False)


def fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_creatable(path: Path, what: str = "--out") -> None:
    """Before any work: `path` is not an existing file, and the nearest folder that exists above it
    is a folder this process may write into (FileAccessError naming which otherwise)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileAccessError(f"{what} {path}: expected a folder, got an existing file")
    parent = path if path.exists() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise FileAccessError(f"{what} {path}: expected a folder path, but {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileAccessError(f"{what} {path}: cannot write into {parent} (permission denied)")


def check_output_file(path: Path, what: str = "--out") -> None:
    """Before any work: `path` can be written as a file (not a folder; its folder exists or can be
    made, and may be written into)."""
    path = Path(path)
    if path.is_dir():
        raise FileAccessError(f"{what} {path}: expected a file path, got an existing folder")
    try:
        check_creatable(path.parent, what)
    except FileAccessError as exc:
        raise FileAccessError(f"{what} {path}: cannot be written ({str(exc).split(': ', 1)[-1]})") from None


def ensure_folder(path: Path, what: str = "--out") -> Path:
    """Create the folder `path` (and its parents) if needed and check that it can be written;
    FileAccessError naming the path and the problem otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileAccessError(f"{what} {path}: expected a folder, got an existing file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(f"{what} {path}: cannot create the folder ({exc.strerror or exc})") from exc
    probe = temp_name(path / ".vaeport-write-probe")
    try:  # a real write: permission bits do not tell root (or a read-only mount) the truth
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()
    except OSError as exc:
        raise FileAccessError(f"{what} {path}: cannot write into this folder ({exc.strerror or exc})") from exc
    return path


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any], sync: bool = True) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`. An OS error
    (disk full, permission) is raised as FileAccessError naming `path`, with nothing left behind."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except FileAccessError:
        raise
    except OSError as exc:
        raise FileAccessError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    if sync:
        fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


@contextlib.contextmanager
def atomic_folder(path: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a new temporary folder beside `path`; when the block ends without error, rename it to
    `path` (replacing an existing folder only when `replace`); on error, delete it."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        os.mkdir(tmp, 0o777)
    except OSError as exc:
        raise FileAccessError(f"{path}: cannot create a folder beside it ({exc.strerror or exc})") from exc
    try:
        yield tmp
        if replace and path.exists():
            old = temp_name(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)  # refuses to replace a non-empty folder, unlike os.replace
        fsync_folder(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
