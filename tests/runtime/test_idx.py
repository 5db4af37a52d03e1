import gzip
import struct

import numpy as np
import pytest

from vaeport.runtime.errors import InputError
from vaeport.runtime.idx import parse_idx, read_idx, sha256_of_payload

from ..helpers import write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    np.testing.assert_array_equal(read_idx(path), array)


def test_checksum_ignores_compression(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array, compress=True)
    write_idx(tmp_path / "a", array, compress=False)
    assert sha256_of_payload(tmp_path / "a.gz") == sha256_of_payload(tmp_path / "a")


def test_big_endian_int32():
    data = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", 1, -2)
    np.testing.assert_array_equal(parse_idx(data), [1, -2])


def test_bad_magic():
    with pytest.raises(InputError, match="expected an IDX file"):
        parse_idx(b"\x01\x02\x08\x01" + b"\x00" * 8)


def test_truncated(tmp_path):
    array = np.zeros((5, 4, 4), dtype=np.uint8)
    path = tmp_path / "t.gz"
    write_idx(path, array)
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload[:-7]))
    with pytest.raises(InputError, match="truncated: expected 80 data bytes for shape \\[5, 4, 4\\], got 73"):
        read_idx(path)


def test_too_long():
    data = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2) + b"\x01\x02\x03"
    with pytest.raises(InputError, match="too long"):
        parse_idx(data)


def test_damaged_gzip(tmp_path):
    path = tmp_path / "d.gz"
    write_idx(path, np.zeros(1000, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(InputError, match="damaged"):
        read_idx(path)
