"""Every error vaeport raises on purpose, with the exit status each command gives it (torch-free).

One table for the whole project: the same failure exits with the same code in every command.
The README lists the codes; `tests/test_exit_codes.py` checks each against every CLI.
"""

from __future__ import annotations


class VaeportError(Exception):
    """Base of every error vaeport raises on purpose; the CLIs print it as one line."""

    exit_code = 1


class InputError(VaeportError, ValueError):
    """An argument, file or array is not what was expected."""

    exit_code = 2


class ModelFolderError(VaeportError, ValueError):
    """A model folder is missing files, tampered with, inconsistent, or of an unknown format."""

    exit_code = 3


class MissingExtraError(VaeportError, ImportError):
    """An optional dependency group (extra) is not installed."""

    exit_code = 4


class DeviceError(VaeportError, RuntimeError):
    """The asked-for device cannot be used (no CUDA, or a broken CUDA install)."""

    exit_code = 5


class FileAccessError(VaeportError, OSError):
    """A path cannot be read or written (exists, not a folder, permission, disk full)."""

    exit_code = 6


class ExportError(VaeportError, RuntimeError):
    """The model could not be exported, or an exported graph failed a structural check."""

    exit_code = 7


class ParityError(ExportError):
    """An exported graph (or a variant the user required) differs from its reference beyond tolerance."""

    exit_code = 8


class TrainingError(VaeportError, RuntimeError):
    """Training cannot go on (for example a non-finite loss)."""

    exit_code = 9


class Interrupted(KeyboardInterrupt, VaeportError):
    """Ctrl-C (SIGINT) or SIGTERM: the work stopped at a safe point; what was saved is said. A
    KeyboardInterrupt too, so `except KeyboardInterrupt` in a notebook or a script catches it."""

    exit_code = 130


# Exit statuses that do not come from a VaeportError subclass.
EXIT_UNEXPECTED = 1  # an uncaught exception (a bug): Python's own traceback and status
EXIT_USAGE = InputError.exit_code  # click's usage errors are bad input too
EXIT_OS_ERROR = FileAccessError.exit_code  # a raw OSError is reported like FileAccessError

ERRORS: tuple[type[VaeportError], ...] = (
    InputError,
    ModelFolderError,
    MissingExtraError,
    DeviceError,
    FileAccessError,
    ExportError,
    ParityError,
    TrainingError,
    Interrupted,
)


def describe_os_error(exc: OSError) -> str:
    """'PATH: problem' for an OSError (what a user needs to fix it), without a traceback."""
    problem = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {problem}" if paths else problem


def require_module(module: str, extra: str, purpose: str) -> None:
    """Import `module` or raise MissingExtraError naming the pip extra that provides it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the '{extra}' extra ({module} is not installed): pip install 'vaeport[{extra}]'"
        ) from exc
