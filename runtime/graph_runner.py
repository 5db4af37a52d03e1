"""Run one graph over an array of any length: bounded batches, and a one-thread session for tiny ones."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Any

import numpy as np

from vaeport.runtime.session import SessionSettings, active_device, create_session

# At most this many rows go to the one-thread session. Handing one small image to ONNX Runtime's
# intra-op thread pool costs more than the work it spreads (benchmarks/runtime_speed.py measures it).
SMALL_BATCH = 2


class GraphRunner:
    """One graph, one input. `run(array)` splits `array` into batches of at most `batch_size` rows.

    On a multi-core CPU with the thread count left to ONNX Runtime, batches of at most
    `SMALL_BATCH` rows run on a second, one-thread session, created on first use. Both sessions
    are built from the same verified bytes and are safe to call from many threads.
    """

    def __init__(self, model: bytes, settings: SessionSettings, input_name: str, batch_size: int) -> None:
        self.session = create_session(model, settings)
        self.device = active_device(self.session)
        self.input_name = input_name
        self.batch_size = batch_size
        self._model = model
        self._small_settings = replace(settings, device="cpu", threads=1)
        self._use_small = self.device == "cpu" and settings.threads is None and (os.cpu_count() or 1) > 1
        self._small: Any = None
        self._lock = threading.Lock()

    def _session_for(self, rows: int) -> Any:
        if not self._use_small or rows > SMALL_BATCH:
            return self.session
        if self._small is None:
            with self._lock:
                if self._small is None:
                    self._small = create_session(self._model, self._small_settings)
        return self._small

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        """All outputs for `array`, concatenated over batches."""
        step = self.batch_size
        if len(array) <= step:
            return self._session_for(len(array)).run(None, {self.input_name: array})
        parts = [
            self._session_for(len(part)).run(None, {self.input_name: part})
            for part in (array[i : i + step] for i in range(0, len(array), step))
        ]
        return [np.concatenate(outs) for outs in zip(*parts, strict=True)]
