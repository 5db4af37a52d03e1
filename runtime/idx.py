"""Reader for the IDX format of (Fashion-)MNIST, gzip-compressed or raw."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from vaeport.runtime.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_bytes(path: Path) -> bytes:
    """The IDX payload of `path`, decompressed when it is gzip (detected by magic, not name)."""
    raw = Path(path).read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: expected a complete gzip file, got a damaged one ({exc})") from exc
    return raw


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes: 2 zero bytes, a type code, the number of dims, big-endian uint32 dims."""
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] not in IDX_DTYPES:
        raise InputError(f"{name}: expected an IDX file (magic 0x0000 then a type code), got {data[:4]!r}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise InputError(f"{name}: expected {ndim} dimension sizes in the header, file too short")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[data[2]]
    expected = int(np.prod(dims)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated" if got < expected else "too long"
        raise InputError(f"{name}: {kind}: expected {expected} data bytes for shape {list(dims)}, got {got}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip or raw) into a native-endian numpy array."""
    return parse_idx(read_idx_bytes(path), name=str(path))


def sha256_of_payload(path: Path) -> str:
    """sha256 of the decompressed IDX bytes: the same for any gzip recompression of a file."""
    return hashlib.sha256(read_idx_bytes(path)).hexdigest()
