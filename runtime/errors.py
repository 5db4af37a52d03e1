"""Exceptions every vaeport command and API raises for bad input (torch-free)."""

from __future__ import annotations


class VaeportError(Exception):
    """Base of every error vaeport raises on purpose; the CLIs print it as one line."""


class InputError(VaeportError, ValueError):
    """An argument, file or array is not what was expected."""


class ModelFolderError(VaeportError, ValueError):
    """A model folder is missing files, tampered with, or of an unknown format."""


class MissingExtraError(VaeportError, ImportError):
    """An optional dependency group (extra) is not installed."""


class TrainingError(VaeportError, RuntimeError):
    """Training cannot go on (for example a non-finite loss)."""


def require_module(module: str, extra: str, purpose: str) -> None:
    """Import `module` or raise MissingExtraError naming the pip extra that provides it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the '{extra}' extra ({module} is not installed): pip install 'vaeport[{extra}]'"
        ) from exc
