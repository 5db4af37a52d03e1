"""`ExportOptions`: the one definition of every export setting, its default and its allowed values.
`vae-export`'s options are generated from it (export/cli.py), `export()` takes its fields as
keywords, and models/recipes.json's "export" sections are read into it (models/build.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from vaeport.export.targets import DEFAULT_TARGET, TARGETS, resolve_target
from vaeport.runtime.errors import InputError
from vaeport.train.settings import check_fields, setting

CHECKPOINTS = ("best", "last")


def check_name(name: str | None) -> None:
    """A model name is a label (the manifest's `name`, what people and apps show), never a path."""
    if name is None:
        return
    if not name.strip() or any(c in name for c in "/\\") or name in (".", "..") or not name.isprintable():
        raise InputError(f"expected --name to be a printable name without path separators, got {name!r}")


@dataclass
class ExportOptions:
    """How a run folder becomes a model folder. Same options and seed, same folder."""

    target: str = setting(
        DEFAULT_TARGET,
        "portable: opset 18, IR 8 (onnxruntime >= 1.15, OpenVINO, OpenCV DNN, tract); legacy: opset 13 forms "
        "for converters such as onnx2torch (docs/compatibility.md).",
        choices=tuple(TARGETS),
    )
    opset: int | None = setting(None, "Export the portable forms at this opset instead (18-23).", minimum=1)
    fp16: bool = setting(False, "Also write float16 graphs (float32 inputs/outputs).")
    int8: bool = setting(False, "Also write static int8 QDQ graphs (refused if too inaccurate).")
    calibration_size: int = setting(256, "Training images used to calibrate int8.", minimum=1)
    name: str | None = setting(None, "Model name in the manifest (default: the folder name).")
    checkpoint: str = setting("best", "Which checkpoint of the run folder to export.", choices=CHECKPOINTS)
    force: bool = setting(
        False, "Replace the model in an existing model folder at --out (files vae-export did not write are kept)."
    )
    require_variants: bool = setting(
        False,
        "Fail (exit 8, nothing written) when an asked-for fp16/int8 variant misses its tolerance, instead of "
        "writing the folder without it.",
    )
    data_dir: str | None = setting(None, "Where the run's data set is.", path=True)
    seed: int = setting(0, "Seed of the parity inputs.", minimum=0)

    def __post_init__(self) -> None:
        check_fields(self)  # a Path from Python callers becomes its str there
        resolve_target(self.target, self.opset)
        check_name(self.name)

    @classmethod
    def from_keywords(cls, keywords: dict[str, Any]) -> ExportOptions:
        """From keyword arguments (export()'s, or a recipe's "export" section), naming any unknown one."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise InputError(f"expected export options among {', '.join(sorted(known))}, got {', '.join(unknown)}")
        return cls(**keywords)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
