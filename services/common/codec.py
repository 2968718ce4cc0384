"""The block codec: one numeric array with its labels, as bytes for Redis values and proto fields.

Layout (little-endian)::

    b"TBK1" | u32 header length | header (JSON) | padding to 16 bytes | raw C-order array bytes

The header holds ``dtype``, ``shape``, ``rows`` (labels of the first axis, e.g. symbols),
``fields`` (labels of the last axis, e.g. ``open, high, low, close, volume``) and ``meta`` (a
small JSON object). Decoding is zero-copy: the array is a read-only view of the bytes.
No pickles: a block can be read by any language and never executes anything.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

MAGIC = b"TBK1"
_PREFIX = struct.Struct("<4sI")
_ALIGN = 16
ALLOWED_DTYPES = frozenset({"float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"})
MAX_HEADER_BYTES = 16 * 1024 * 1024


class BlockError(ValueError):
    """The bytes are not a well-formed block; the message says what is wrong."""


@dataclass(frozen=True)
class Block:
    """A decoded block: the array and its labels."""

    array: np.ndarray
    rows: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        """The slice of the last axis labelled ``name``."""
        try:
            return self.array[..., self.fields.index(name)]
        except ValueError:
            raise KeyError(f"block has no field {name!r}; fields: {', '.join(self.fields)}") from None


def encode_block(
    array: np.ndarray,
    *,
    rows: Sequence[str] = (),
    fields: Sequence[str] = (),
    meta: Mapping[str, Any] | None = None,
) -> bytes:
    """Serialise ``array`` (any allowed dtype, any shape) with its labels."""
    arr = np.ascontiguousarray(array)
    dtype = arr.dtype.name
    if dtype not in ALLOWED_DTYPES:
        raise BlockError(f"dtype {dtype} is not allowed in a block; allowed: {sorted(ALLOWED_DTYPES)}")
    if rows and (arr.ndim == 0 or len(rows) != arr.shape[0]):
        raise BlockError(f"{len(rows)} row labels for an array of shape {arr.shape}")
    if fields and (arr.ndim == 0 or len(fields) != arr.shape[-1]):
        raise BlockError(f"{len(fields)} field labels for an array of shape {arr.shape}")
    header = orjson.dumps(
        {
            "dtype": dtype,
            "shape": list(arr.shape),
            "rows": list(rows),
            "fields": list(fields),
            "meta": dict(meta or {}),
        }
    )
    head_len = _PREFIX.size + len(header)
    pad = (-head_len) % _ALIGN
    # The array joins as a buffer: one copy of the body, not arr.tobytes() and then another. (Its memoryview,
    # ``arr.data``: numpy's stubs give ndarray the buffer protocol only from Python 3.12.)
    return b"".join((_PREFIX.pack(MAGIC, len(header) + pad), header, b" " * pad, arr.data))


def _labels(values: list[object]) -> tuple[str, ...]:
    """Row or field labels as strings; a type check in C first, as a chunk has thousands of labels."""
    labels = tuple(values)
    if set(map(type, labels)) <= {str}:
        return labels  # type: ignore[return-value]
    return tuple(str(label) for label in labels)


def decode_block(data: bytes | bytearray | memoryview) -> Block:
    """Parse a block; raises :class:`BlockError` naming the defect when the bytes are malformed."""
    view = memoryview(data)
    if len(view) < _PREFIX.size:
        raise BlockError(f"block too short ({len(view)} bytes)")
    magic, header_len = _PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        raise BlockError("not a technic block (bad magic)")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(view):
        raise BlockError(f"block header length {header_len} exceeds the {len(view)} bytes given")
    try:
        header = orjson.loads(bytes(view[_PREFIX.size : _PREFIX.size + header_len]))
        dtype = np.dtype(header["dtype"])
        shape = tuple(int(n) for n in header["shape"])
        rows = _labels(header.get("rows", ()))
        fields = _labels(header.get("fields", ()))
        meta = header.get("meta") or {}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BlockError(f"block header is malformed: {exc}") from None
    if dtype.name not in ALLOWED_DTYPES:
        raise BlockError(f"block dtype {dtype.name} is not allowed")
    if any(n < 0 for n in shape):
        raise BlockError(f"block shape {shape} has a negative size")
    body = view[_PREFIX.size + header_len :]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(body) != expected:
        raise BlockError(f"block body is {len(body)} bytes, shape {shape} of {dtype.name} needs {expected}")
    if rows and (not shape or len(rows) != shape[0]):
        raise BlockError(f"{len(rows)} row labels for shape {shape}")
    if fields and (not shape or len(fields) != shape[-1]):
        raise BlockError(f"{len(fields)} field labels for shape {shape}")
    array = np.frombuffer(body, dtype=dtype).reshape(shape)
    return Block(array=array, rows=rows, fields=fields, meta=meta)
