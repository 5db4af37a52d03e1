"""Find external-data references in an ONNX file without the `onnx` package.

The runtime depends on onnxruntime alone, so this walks the protobuf wire format directly:
ModelProto.graph (7) -> GraphProto.initializer (5), sparse_initializer (15), node (1) ->
NodeProto.attribute (5) -> AttributeProto.t (5), g (6), tensors (10), graphs (11);
TensorProto.external_data (13) holds key/value entries whose key "location" names the file.
"""

from __future__ import annotations

from vaeport.runtime.errors import ModelFolderError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

# message kind -> {field number: message kind of that (length-delimited) field}
NESTED = {
    "model": {7: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse", 16: "tensor"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
}


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ModelFolderError("expected a protobuf varint, got the end of the file")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes):
    """Yield (field number, wire type, value) of one protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire == FIXED64:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == FIXED32:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire == LENGTH:
            size, pos = read_varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ModelFolderError(f"expected an ONNX protobuf file, got wire type {wire}")
        if pos > len(data):
            raise ModelFolderError("expected a complete ONNX protobuf file, got a truncated one")
        yield number, wire, value


def external_locations(model_bytes: bytes) -> list[str]:
    """Every `location` of external data referenced anywhere in the model (usually none)."""
    found: list[str] = []
    stack = [("model", model_bytes)]
    while stack:
        kind, data = stack.pop()
        for number, wire, value in fields(data):
            if wire != LENGTH:
                continue
            if kind == "entry":
                continue
            child = NESTED.get(kind, {}).get(number)
            if child == "entry":
                entry = {n: v for n, w, v in fields(value) if w == LENGTH}
                if entry.get(1) == b"location":
                    found.append(entry.get(2, b"").decode("utf-8", "replace"))
            elif child is not None:
                stack.append((child, value))
    return found
