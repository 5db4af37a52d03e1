"""vaeport.runtime: load an exported model folder and sample, encode and decode with numpy + onnxruntime.

This package never imports torch. `VAE` is imported lazily so that the small helpers here
(file names, errors, CLI support) stay usable without onnxruntime installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vaeport.runtime.errors import (
    DeviceError,
    ExportError,
    FileAccessError,
    InputError,
    Interrupted,
    MissingExtraError,
    ModelFolderError,
    ParityError,
    TrainingError,
    VaeportError,
)

if TYPE_CHECKING:
    from vaeport.runtime.vae import VAE

__all__ = [
    "VAE",
    "DeviceError",
    "ExportError",
    "FileAccessError",
    "InputError",
    "Interrupted",
    "MissingExtraError",
    "ModelFolderError",
    "ParityError",
    "TrainingError",
    "VaeportError",
]


def __getattr__(name: str) -> Any:
    if name == "VAE":
        from vaeport.runtime.vae import VAE

        return VAE
    raise AttributeError(f"module 'vaeport.runtime' has no attribute {name!r}")
