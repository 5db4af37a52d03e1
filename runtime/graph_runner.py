"""Run one graph over an array of any length, in batches of bounded size."""

from __future__ import annotations

from typing import Any

import numpy as np

from vaeport.runtime.session import SessionSettings, active_device, create_session


class GraphRunner:
    """One graph, one input. `run(array)` splits `array` into batches of at most `batch_size` rows,
    so ONNX Runtime's memory stays bounded whatever the caller passes.

    One session with a thread per core serves every batch size: a one-thread session for single
    images was slower here, even for a 1 MFLOP decoder (benchmarks/runtime_speed.py measures it).
    """

    def __init__(self, model: bytes, settings: SessionSettings, input_name: str, batch_size: int) -> None:
        self.session: Any = create_session(model, settings)
        self.device = active_device(self.session)
        self.input_name = input_name
        self.batch_size = batch_size
        self.output_names = [output.name for output in self.session.get_outputs()]

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        """All outputs for `array`, concatenated over batches."""
        step, run, names = self.batch_size, self.session.run, self.output_names
        if len(array) <= step:
            return run(names, {self.input_name: array})
        parts = [run(names, {self.input_name: array[i : i + step]}) for i in range(0, len(array), step)]
        return [np.concatenate(outs) for outs in zip(*parts, strict=True)]
