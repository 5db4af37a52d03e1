"""vaeport.export: torch -> ONNX for the encoder and the decoder, graph checks, the parity gate,
fp16/int8 variants and `vae-export`. Importing this package does not import torch; `export` does.

    from vaeport.export import export
    folder = export("runs/fmnist", "models/fmnist", fp16=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaeport.export.pipeline import export

__all__ = ["export"]


def __getattr__(name: str) -> Any:
    if name == "export":
        from vaeport.export.pipeline import export

        return export
    raise AttributeError(f"module 'vaeport.export' has no attribute {name!r}")
