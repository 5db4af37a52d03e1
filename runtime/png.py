"""Minimal 8-bit PNG writer (grayscale or RGB) using only the standard library.

Kept here rather than depending on Pillow so the runtime stays numpy + onnxruntime + click.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from vaeport.runtime.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounding to nearest (halves up); values outside [0, 1] are clipped."""
    scaled = np.clip(image, 0.0, 1.0)  # the one copy; the rest is in place
    scaled *= np.float32(255.0)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint8)  # truncation of x + 0.5 >= 0: rounding


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a [C,H,W] float image in [0, 1] with C = 1 (gray) or 3 (RGB)."""
    c, h, w = image.shape
    if c not in (1, 3):
        raise InputError(f"expected 1 or 3 channels for PNG, got {c}")
    pixels = to_uint8(image).transpose(1, 2, 0).reshape(h, w * c)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), pixels], axis=1).tobytes()  # filter 0 per row
    color_type = 0 if c == 1 else 2
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def grid(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile [N,C,H,W] images into one [C, rows*(H+pad)+pad, cols*(W+pad)+pad] image."""
    n, c, h, w = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    canvas = np.ones((c, rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, top : top + h, left : left + w] = images[i]
    return canvas
