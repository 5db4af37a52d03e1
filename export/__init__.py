"""vaeport.export: torch -> ONNX for every graph role of a model family, graph checks, the parity
gate, fp16/int8 variants and `vae-export`. Importing this package does not import torch; `export` does.

    from vaeport.export import ExportOptions, export
    folder = export("runs/fmnist", "models/fmnist", fp16=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vaeport.export.options import ExportOptions

if TYPE_CHECKING:
    from vaeport.export.pipeline import export

__all__ = ["ExportOptions", "export"]


def __getattr__(name: str) -> Any:
    if name == "export":
        from vaeport.export.pipeline import export

        return export
    raise AttributeError(f"module 'vaeport.export' has no attribute {name!r}")
