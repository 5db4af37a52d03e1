"""The one place where ONNX Runtime sessions are created (providers, threads, memory settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vaeport.runtime.errors import DeviceError, MissingExtraError

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError(
            "the vaeport runtime needs onnxruntime: pip install 'vaeport[cpu]' (or 'vaeport[gpu]' for CUDA)"
        ) from exc
    return onnxruntime


@dataclass(frozen=True)
class SessionSettings:
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    threads: int | None = None  # intra-op threads; None lets ONNX Runtime pick (one per core)
    optimization: str = "all"  # "disabled" | "basic" | "extended" | "all"


def cpu_workers(threads: int | None) -> int:
    """Threads to run independent CPU work on: `threads`, else the cores this process may use."""
    if threads:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def session_options(settings: SessionSettings) -> Any:
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options.graph_optimization_level = levels[settings.optimization]
    if settings.threads:
        options.intra_op_num_threads = settings.threads
    # The arena reuses memory between runs (malloc/free churn of large blocks fragments the heap and
    # makes RSS creep). It grows to the largest batch it has seen, and VAE splits inputs into
    # batches of at most `batch_size`, so that peak is bounded however batch sizes vary.
    # Memory patterns are off: they are cached per input shape.
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


def cuda_available() -> bool:
    return CUDA in import_onnxruntime().get_available_providers()


def create_session(model: bytes | str, settings: SessionSettings) -> Any:
    """An InferenceSession on the asked-for device; raises DeviceError rather than fall back silently."""
    ort = import_onnxruntime()
    if settings.device not in DEVICES:
        raise DeviceError(f"expected device to be one of {', '.join(DEVICES)}, got {settings.device!r}")
    options = session_options(settings)
    want_cuda = settings.device == "cuda" or (settings.device == "auto" and cuda_available())
    if settings.device == "cuda" and not cuda_available():
        raise DeviceError(
            "expected CUDA for device='cuda', but this onnxruntime has no CUDAExecutionProvider "
            f"(available: {', '.join(ort.get_available_providers())}); install 'vaeport[gpu]'"
        )
    if want_cuda:
        providers = [(CUDA, {"arena_extend_strategy": "kSameAsRequested"}), CPU]
        try:
            session = ort.InferenceSession(model, sess_options=options, providers=providers)
        except Exception as exc:  # a broken CUDA install raises from deep inside onnxruntime
            if settings.device == "cuda":
                raise DeviceError(f"expected a working CUDA session, got an error: {exc}") from exc
            session = None
        if session is not None and session.get_providers()[0] == CUDA:
            return session
        if settings.device == "cuda":
            raise DeviceError(
                "expected CUDAExecutionProvider to be active for device='cuda', got "
                f"{session.get_providers() if session else 'no session'} (is the CUDA driver present?)"
            )
    return ort.InferenceSession(model, sess_options=options, providers=[CPU])


def active_device(session: Any) -> str:
    return "cuda" if session.get_providers()[0] == CUDA else "cpu"
