"""`Graph`: one ONNX graph in one ONNX Runtime session, run with its inputs by name, in batches.

The runtime's `VAE` and the export parity gate both run graphs through this class, so they share
the session settings of `runtime/session.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vaeport.runtime.errors import InputError
from vaeport.runtime.session import SessionSettings, active_device, create_session

CPU = SessionSettings(device="cpu")


def batch_axis(shape: list[Any]) -> int | None:
    """The batch axis of a graph input or output: its first symbolic size (None: all fixed)."""
    return next((i for i, dim in enumerate(shape) if not isinstance(dim, int)), None)


def rows(array: np.ndarray, axis: int | None, start: int, stop: int) -> np.ndarray:
    if axis is None:
        return array
    return array[(slice(None),) * axis + (slice(start, stop),)]


class Graph:
    """Named inputs and outputs; `run` splits every input along its batch axis (its first
    symbolic size: the first axis of images and latents, the second of a VQ prior's key/value
    buffers; an input of fixed shape goes whole into every call) into batches of at most
    `batch_size` rows and writes each batch's outputs into arrays allocated once, so a large call
    costs the result plus one batch, and ONNX Runtime's arena grows only to the largest batch. One
    session with a thread per core serves every batch size: a one-thread session for single images
    was slower here (benchmarks/runtime_speed.py measures it)."""

    def __init__(self, model: bytes, settings: SessionSettings = CPU, batch_size: int | None = None) -> None:
        self.session: Any = create_session(model, settings)
        self.device = active_device(self.session)
        self.inputs = [value.name for value in self.session.get_inputs()]
        self.outputs = [value.name for value in self.session.get_outputs()]
        self.input_axes = {value.name: batch_axis(value.shape) for value in self.session.get_inputs()}
        self.output_axes = [batch_axis(value.shape) for value in self.session.get_outputs()]
        self.batch_size = batch_size
        self._input_names = set(self.inputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Every output for `feeds` (input name -> array with the same number of rows on its batch axis)."""
        if feeds.keys() != self._input_names:
            raise InputError(f"expected inputs {self.inputs}, got {sorted(feeds)}")
        axes = self.input_axes
        sizes = {name: array.shape[axes[name]] for name, array in feeds.items() if axes[name] is not None}
        n = next(iter(sizes.values()), 0)
        if any(size != n for size in sizes.values()):
            raise InputError(f"expected every input to have the same number of rows, got {sizes}")
        step = self.batch_size or n
        if n <= step:  # one call, as it comes (this is the hot path of single-image decodes)
            return self.session.run(self.outputs, feeds)
        results: list[np.ndarray] = []
        for start in range(0, n, step):
            part = self.session.run(
                self.outputs, {name: rows(a, self.input_axes[name], start, start + step) for name, a in feeds.items()}
            )
            if not results:
                results = [
                    np.empty((*out.shape[:axis], n, *out.shape[axis + 1 :]), dtype=out.dtype)
                    for out, axis in zip(part, self.output_axes, strict=True)
                ]
            for result, out, axis in zip(results, part, self.output_axes, strict=True):
                rows(result, axis, start, start + out.shape[axis])[...] = out
        return results

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """`run` with the inputs given in the graph's order."""
        if len(arrays) != len(self.inputs):
            raise InputError(f"expected {len(self.inputs)} input(s) {self.inputs}, got {len(arrays)}")
        return self.run(dict(zip(self.inputs, arrays, strict=True)))
