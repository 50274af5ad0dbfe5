"""Triton's binary tensor data extension: pure framing functions, no I/O.

A binary request or response body is a JSON header followed by raw tensor sections::

    body = <JSON header, N bytes> <section of tensor 0> <section of tensor 1> ...

* the HTTP header ``Inference-Header-Content-Length: N`` says where the JSON ends;
* each tensor that travels binary carries ``"parameters": {"binary_data_size": size}``
  in the JSON, and the sections follow in the order of the JSON list;
* numeric tensors are little-endian, row-major; a ``BYTES`` tensor is its elements in
  row-major order, each a 4-byte little-endian length followed by that many bytes.

Every function validates what it reads and raises
:class:`~mmship.core.errors.InputSpecError` naming what was expected, what came and
the fix.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mmship.core.errors import InputSpecError
from mmship.payload.datatypes import BYTES, NUMPY_DTYPES, element_count, format_shape

#: The header naming the length of the JSON part (lower-case, as in decoded headers).
HEADER_LENGTH = "inference-header-content-length"

_LENGTH = struct.Struct("<I")


# --- BYTES elements ---------------------------------------------------------------


def serialize_bytes_tensor(items: Iterable[bytes | str]) -> bytes:
    """``BYTES`` elements as one section: per element a 4-byte LE length, then the bytes.
    ``str`` elements are written as UTF-8."""
    parts: list[bytes] = []
    for item in items:
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        if len(data) > 0xFFFFFFFF:
            raise InputSpecError(
                f"a BYTES element of {len(data)} bytes does not fit the 4-byte length prefix",
                hint="send elements under 4 GiB",
            )
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def deserialize_bytes_tensor(section: bytes | memoryview, where: str, count: int | None = None) -> list[bytes]:
    """Split a ``BYTES`` section into its elements.

    :param section: the section's bytes.
    :param where: names the tensor in error messages, e.g. ``input 'image'``.
    :param count: the number of elements the shape declares; checked when given.
    """
    view = memoryview(section)
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        left = len(view) - offset
        if left < 4:
            raise InputSpecError(
                f"{where}: element {len(items)} is cut off: {left} bytes left where a 4-byte length prefix is needed",
                hint="prefix every BYTES element with its length as a 4-byte little-endian integer",
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if length > len(view) - offset:
            raise InputSpecError(
                f"{where}: element {len(items)} declares {length} bytes but only {len(view) - offset} bytes are left "
                "in its section",
                hint="check the 4-byte little-endian length prefixes and the tensor's binary_data_size",
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
    if count is not None and len(items) != count:
        raise InputSpecError(
            f"{where}: the shape declares {count} elements but the binary data holds {len(items)}",
            hint="make the shape match the number of length-prefixed elements",
        )
    return items


# --- tensors ----------------------------------------------------------------------


def tensor_to_section(array: np.ndarray, datatype: str) -> bytes:
    """A tensor's binary section: little-endian row-major values, or length-prefixed
    ``BYTES`` elements."""
    if datatype == BYTES:
        return serialize_bytes_tensor(np.asarray(array, dtype=object).ravel(order="C").tolist())
    dtype = NUMPY_DTYPES[datatype]
    return np.ascontiguousarray(array, dtype=dtype).tobytes(order="C")


def section_to_tensor(section: bytes | memoryview, datatype: str, shape: list[int], where: str) -> np.ndarray:
    """The tensor a section holds, reshaped to ``shape``. ``BYTES`` tensors come back as
    ``object`` arrays of ``bytes``."""
    count = element_count(shape)
    if datatype == BYTES:
        items = deserialize_bytes_tensor(section, where, count)
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(shape)
    dtype = NUMPY_DTYPES[datatype]
    needed = count * dtype.itemsize
    if len(section) != needed:
        raise InputSpecError(
            f"{where} ({datatype}, shape {format_shape(shape)}) needs {needed} bytes of binary data "
            f"({count} values x {dtype.itemsize} bytes), got {len(section)}",
            hint="make binary_data_size and the shape agree, and send the values little-endian, row-major",
        )
    return np.frombuffer(bytes(section), dtype=dtype).reshape(shape)


# --- bodies -----------------------------------------------------------------------


def header_length_of(headers: Mapping[str, str]) -> str | None:
    """The raw ``Inference-Header-Content-Length`` value, whatever its case, or ``None``."""
    for key, value in headers.items():
        if key.lower() == HEADER_LENGTH:
            return value
    return None


def split_body(body: bytes, header_length: str | int | None, what: str = "request") -> tuple[bytes, memoryview]:
    """Split a body into its JSON header and the binary sections that follow.

    :param header_length: the ``Inference-Header-Content-Length`` value; ``None`` means
        the whole body is JSON.
    :param what: ``request`` or ``response``, for messages.
    """
    if header_length is None:
        return body, memoryview(b"")
    text = str(header_length).strip()
    try:
        length = int(text)
    except ValueError:
        raise InputSpecError(
            f"the {what}'s Inference-Header-Content-Length is {text!r}, not a byte count",
            hint="set it to the length in bytes of the JSON part of the body",
        ) from None
    if length <= 0 or length > len(body):
        raise InputSpecError(
            f"the {what}'s Inference-Header-Content-Length says the JSON part is {length} bytes, "
            f"but the body has {len(body)} bytes",
            hint="set it to the length in bytes of the JSON part (a positive number no larger than the body)",
        )
    return body[:length], memoryview(body)[length:]


def refuse_json_constant(name: str) -> Any:
    """``parse_constant`` for :func:`json.loads`: bare ``NaN``, ``Infinity`` and
    ``-Infinity`` are not JSON (Python reads them by default; no other parser does)."""
    raise InputSpecError(
        f"the JSON holds a bare {name}, which JSON does not allow",
        hint="send finite numbers (an FP32 tensor with NaN or infinite values cannot be embedded either)",
    )


def parse_json(data: bytes, what: str = "request", binary: bool = False) -> Any:
    """Parse a JSON document, with the position of a syntax error in the message. Bare
    ``NaN``/``Infinity`` and nesting too deep for the parser are refused."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
    except UnicodeDecodeError as exc:
        hint = (
            "send binary tensors after the JSON and set Inference-Header-Content-Length to the JSON's length"
            if not binary
            else "check Inference-Header-Content-Length: it must be the length of the JSON part alone"
        )
        raise InputSpecError(f"the {what} body is not UTF-8 JSON (byte {exc.start} is {data[exc.start]:#04x})", hint=hint) from None
    try:
        return json.loads(text, parse_constant=refuse_json_constant)
    except RecursionError:
        raise InputSpecError(
            f"the {what} is JSON nested too deeply to read", hint="send tensor data flat or nested once per dimension"
        ) from None
    except json.JSONDecodeError as exc:
        snippet = text[max(0, exc.pos - 20) : exc.pos + 20].replace("\n", " ")
        if exc.msg == "Extra data" and not binary:
            hint = (
                "the JSON is followed by more bytes: if they are binary tensors, set the header "
                "Inference-Header-Content-Length to the JSON's length"
            )
        elif binary:
            hint = "check Inference-Header-Content-Length: it must be the length in bytes of the JSON part alone"
        else:
            hint = "send a valid JSON object (Content-Type: application/json)"
        raise InputSpecError(
            f"the {what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(character {exc.pos}, near {snippet!r})",
            hint=hint,
        ) from None


def binary_data_size(entry: Mapping[str, Any], where: str) -> int | None:
    """The entry's ``parameters.binary_data_size``, validated; ``None`` when absent."""
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, Mapping) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int):
        raise InputSpecError(
            f"{where} has binary_data_size {size!r}; it must be a whole number of bytes",
            hint="set parameters.binary_data_size to the length of the tensor's binary section",
        )
    if size < 0:
        raise InputSpecError(
            f"{where} has a negative binary_data_size ({size})",
            hint="set parameters.binary_data_size to the length of the tensor's binary section",
        )
    return size


def slice_sections(
    entries: Sequence[Mapping[str, Any]], rest: bytes | memoryview, kind: str = "input"
) -> dict[int, memoryview]:
    """Cut the binary part of a body into one section per entry that declares
    ``binary_data_size``, in order; returns ``{entry index: section}``.

    Raises when a size overruns the bytes left (a truncated body), or when bytes are
    left over after the last section.
    """
    view = memoryview(rest)
    sections: dict[int, memoryview] = {}
    offset = 0
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        where = f"{kind} {name!r}" if isinstance(name, str) else f"{kind} {index}"
        size = binary_data_size(entry, where) if isinstance(entry, Mapping) else None
        if size is None:
            continue
        left = len(view) - offset
        if size > left:
            raise InputSpecError(
                f"{where} declares binary_data_size {size} but only {left} bytes are left in the body "
                "(truncated body, or a wrong size)",
                hint="send every binary tensor in full, in the order of the JSON list, with its exact size",
            )
        sections[index] = view[offset : offset + size]
        offset += size
    if offset != len(view):
        declared = ", ".join(str(binary_data_size(entries[i], kind) or 0) for i in sections) or "none"
        raise InputSpecError(
            f"the body has {len(view) - offset} bytes after the binary sections the JSON declares "
            f"(binary_data_size: {declared})",
            hint="set binary_data_size on every binary tensor and Inference-Header-Content-Length to the JSON's length",
        )
    return sections


def join_body(header: Mapping[str, Any], sections: Sequence[bytes]) -> tuple[bytes, int]:
    """A body from a JSON header and binary sections; returns ``(body, header length)``."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return b"".join([head, *sections]), len(head)
