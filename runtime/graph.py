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


class Graph:
    """Named inputs and outputs; `run` splits every input along its first (batch) axis into
    batches of at most `batch_size` rows and writes each batch's outputs into arrays allocated
    once, so a large call costs the result plus one batch, and ONNX Runtime's arena grows only to
    the largest batch. One session with a thread per core serves every batch size: a one-thread
    session for single images was slower here (benchmarks/runtime_speed.py measures it)."""

    def __init__(self, model: bytes, settings: SessionSettings = CPU, batch_size: int | None = None) -> None:
        self.session: Any = create_session(model, settings)
        self.device = active_device(self.session)
        self.inputs = [value.name for value in self.session.get_inputs()]
        self.outputs = [value.name for value in self.session.get_outputs()]
        self.batch_size = batch_size
        self._input_names = set(self.inputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Every output for `feeds` (input name -> array with the same first dimension)."""
        if feeds.keys() != self._input_names:
            raise InputError(f"expected inputs {self.inputs}, got {sorted(feeds)}")
        n = len(feeds[self.inputs[0]])
        if len(feeds) > 1 and any(len(array) != n for array in feeds.values()):
            sizes = {name: len(array) for name, array in feeds.items()}
            raise InputError(f"expected every input to have the same number of rows, got {sizes}")
        step = self.batch_size or n
        if n <= step:  # one call, as it comes (this is the hot path of single-image decodes)
            return self.session.run(self.outputs, feeds)
        results: list[np.ndarray] = []
        for start in range(0, n, step):
            part = self.session.run(self.outputs, {name: array[start : start + step] for name, array in feeds.items()})
            if not results:
                results = [np.empty((n, *out.shape[1:]), dtype=out.dtype) for out in part]
            for result, out in zip(results, part, strict=True):
                result[start : start + len(out)] = out
        return results

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """`run` with the inputs given in the graph's order."""
        if len(arrays) != len(self.inputs):
            raise InputError(f"expected {len(self.inputs)} input(s) {self.inputs}, got {len(arrays)}")
        return self.run(dict(zip(self.inputs, arrays, strict=True)))
