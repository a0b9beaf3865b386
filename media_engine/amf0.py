"""AMF0, the value encoding of RTMP commands and metadata (``onMetaData``).

:func:`amf0_encode` writes numbers, booleans, strings, objects (``dict``), null
(``None``) and undefined (:data:`UNDEFINED`). :func:`amf0_decode` reads those
plus ECMA arrays and (long) strings and strict arrays; ECMA arrays come back as
``dict``, strict arrays as ``list``, undefined as ``None``. Decoding is
bounded: nesting deeper than ``max_depth``, more than ``max_values`` values in
all, or a value running past the end of the data raise :class:`Amf0Error`
(the RTMP session also caps a command message's size before it is decoded).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any


class Amf0Error(Exception):
    """An AMF0 value this module cannot decode."""


class Amf0Marker(IntEnum):
    """AMF0 type markers (the first byte of every value)."""

    NUMBER = 0
    BOOLEAN = 1
    STRING = 2
    OBJECT = 3
    NULL = 5
    UNDEFINED = 6
    ECMA_ARRAY = 8
    OBJECT_END = 9
    STRICT_ARRAY = 10
    LONG_STRING = 12


# An empty key then the object-end marker: closes an object or ECMA array.
OBJECT_END = b"\x00\x00" + bytes([Amf0Marker.OBJECT_END])


class _Undefined:
    pass


UNDEFINED = _Undefined()
"""Encodes as AMF0 undefined (``None`` encodes as null)."""


def amf0_encode(*values: Any) -> bytes:
    """The AMF0 encoding of ``values``, one after the other (a command: name, transaction id, ...)."""
    out = bytearray()
    for value in values:
        if value is None:
            out.append(Amf0Marker.NULL)
        elif value is UNDEFINED:
            out.append(Amf0Marker.UNDEFINED)
        elif isinstance(value, bool):
            out += bytes([Amf0Marker.BOOLEAN, int(value)])
        elif isinstance(value, int | float):
            out += bytes([Amf0Marker.NUMBER]) + struct.pack(">d", float(value))
        elif isinstance(value, str):
            raw = value.encode()
            out += bytes([Amf0Marker.STRING]) + struct.pack(">H", len(raw)) + raw
        elif isinstance(value, dict):
            out.append(Amf0Marker.OBJECT)
            for key, item in value.items():
                raw = key.encode()
                out += struct.pack(">H", len(raw)) + raw + amf0_encode(item)
            out += OBJECT_END
        else:
            raise TypeError(f"AMF0 cannot encode {type(value)}")
    return bytes(out)


MAX_DEPTH = 32  # objects / arrays nested in one another
MAX_VALUES = 4096  # values (object entries and array items included) in one decode


def amf0_decode(data: bytes, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> list[Any]:
    """Every AMF0 value in ``data``; raises :class:`Amf0Error` on a marker not supported,
    truncated data, or beyond the depth / value count bounds."""
    try:
        return _decode(data, max_depth, max_values)
    except (IndexError, struct.error) as exc:
        raise Amf0Error("AMF0 data truncated") from exc


def _decode(data: bytes, max_depth: int, max_values: int) -> list[Any]:
    values: list[Any] = []
    i = 0
    count = 0

    def string(i: int, long: bool = False) -> tuple[str, int]:
        size_len = 4 if long else 2
        size = int.from_bytes(data[i : i + size_len], "big")
        if i + size_len + size > len(data):
            raise Amf0Error("AMF0 string runs past the data")
        return data[i + size_len : i + size_len + size].decode(errors="replace"), i + size_len + size

    def value(i: int, depth: int = 0) -> tuple[Any, int]:
        nonlocal count
        count += 1
        if count > max_values:
            raise Amf0Error(f"more than {max_values} AMF0 values")
        if depth > max_depth:
            raise Amf0Error(f"AMF0 nested deeper than {max_depth}")
        marker = data[i]
        i += 1
        if marker == Amf0Marker.NUMBER:
            return struct.unpack_from(">d", data, i)[0], i + 8
        if marker == Amf0Marker.BOOLEAN:
            return bool(data[i]), i + 1
        if marker == Amf0Marker.STRING:
            return string(i)
        if marker == Amf0Marker.LONG_STRING:
            return string(i, long=True)
        if marker in (Amf0Marker.NULL, Amf0Marker.UNDEFINED):
            return None, i
        if marker in (Amf0Marker.OBJECT, Amf0Marker.ECMA_ARRAY):
            if marker == Amf0Marker.ECMA_ARRAY:
                i += 4  # the (advisory) entry count
            obj: dict[str, Any] = {}
            while i + 3 <= len(data):
                if data[i : i + 3] == OBJECT_END:
                    return obj, i + 3
                key, i = string(i)
                obj[key], i = value(i, depth + 1)
            return obj, i
        if marker == Amf0Marker.STRICT_ARRAY:
            length = int.from_bytes(data[i : i + 4], "big")
            i += 4
            items = []
            for _ in range(length):
                item, i = value(i, depth + 1)
                items.append(item)
            return items, i
        raise Amf0Error(f"AMF0 marker {marker} not supported")

    while i < len(data):
        item, i = value(i)
        values.append(item)
    return values
