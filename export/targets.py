"""Compatibility targets of `vae-export --target`: which opset (and so IR version) and graph forms
the model folder is written in, chosen for the runtimes an app pins.

- portable (default): opset 18, IR 8. Every op vaeport's graphs use exists at opset 18, so nothing
  the runtime needs is given up, and the oldest onnxruntime with wheels for current Pythons (1.15)
  loads it, as do OpenVINO, OpenCV DNN and tract (docs/compatibility.md). Opset 20, torch's
  default, needs onnxruntime >= 1.17 for no gain here.
- legacy: opset 13, IR 7, in the forms converters to other frameworks accept (Split with explicit
  sizes, Reshape without allowzero, Shape without start/end, Resize without opset-18 attributes):
  for onnx2torch, onnx-tf and runtimes older than opset 18 support.

`--opset N` (18-23) exports the portable forms at another opset.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaeport.runtime.errors import InputError


@dataclass(frozen=True)
class Target:
    name: str
    opset: int  # the opset the written graphs declare
    forms: str  # what the graphs are written as
    oldest_onnxruntime_tested: str  # the oldest onnxruntime the compatibility matrix ran it on


TARGETS = {
    "portable": Target("portable", 18, "torch.onnx's opset-18 graphs", "1.15.0"),
    "legacy": Target("legacy", 13, "opset-13 forms for converters (onnx2torch, onnx-tf)", "1.15.0"),
}
DEFAULT_TARGET = "portable"
EXPORT_OPSETS = range(18, 24)  # what torch's dynamo exporter writes; legacy is converted down from 18


def resolve_target(name: str, opset: int | None) -> tuple[Target, int]:
    """(target, opset the graphs will declare) for `--target` and an optional `--opset`."""
    if name not in TARGETS:
        raise InputError(f"expected --target to be one of {', '.join(TARGETS)}, got {name!r}")
    target = TARGETS[name]
    if opset is None:
        return target, target.opset
    if name != "portable":
        if opset == target.opset:  # says what the target already is
            return target, opset
        raise InputError(f"expected --opset only with --target portable (--target {name} is opset {target.opset})")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in EXPORT_OPSETS:
        older = [t.name for t in TARGETS.values() if t.opset == opset]
        hint = f" (opset {opset} is --target {older[0]})" if older else ""
        raise InputError(
            f"expected --opset between {EXPORT_OPSETS.start} and {EXPORT_OPSETS.stop - 1}, got {opset!r}{hint}"
        )
    return target, opset
