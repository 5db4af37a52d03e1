"""Ctrl-C and SIGTERM during training: finish the step in progress, save, then stop.

A KeyboardInterrupt raised wherever the signal lands could leave a step half done (noise drawn,
optimizer moved, counters not), and resuming from what was saved then would not reproduce an
uninterrupted run. So while training runs, the signals only set a flag that the loop reads at
step boundaries; a second Ctrl-C raises KeyboardInterrupt at once (nothing more is saved, the
last checkpoint on disk stays whole).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by SIGINT/SIGTERM while `stop_requests()` is active."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else "none"


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a StopRequest for the duration of the block (main thread only:
    elsewhere Python cannot install handlers, and the signals keep their usual effect)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        request.signal = signum

    previous = {}
    for sig in STOP_SIGNALS:
        # A background job started without job control ignores SIGINT: keep it ignored then.
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, handle)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
