"""v2 tensor entries (``{"name","datatype","shape","data","parameters"}``) <-> numpy.

Shared by requests and responses, JSON and binary: :func:`read_entries` validates the
structure of an ``inputs``/``outputs`` list and attaches binary sections;
:func:`entry_array` and :func:`entry_strings` read the values; :func:`array_entry`
writes one. ``data`` may be flat or nested; either way it is read row-major.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmship.core.errors import InputSpecError
from mmship.payload.binary import (
    binary_data_size,
    section_to_tensor,
    slice_sections,
    tensor_to_section,
)
from mmship.payload.datatypes import (
    BINARY_ONLY,
    BYTES,
    NUMPY_DTYPES,
    datatype_of,
    element_count,
    format_shape,
    normalize_datatype,
)

#: Most dimensions a tensor on the wire may have (numpy stops at 64; models take a few).
MAX_RANK = 16

_EXAMPLE = (
    '{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["<base64 of the JPEG>"], '
    '"parameters": {"content_type": "base64"}}'
)


@dataclass
class WireTensor:
    """One validated tensor entry: JSON ``data`` or a binary ``section``, never both."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    section: memoryview | None = None
    where: str = ""

    @property
    def count(self) -> int:
        """Number of elements the shape declares."""
        return element_count(self.shape)


# --- reading ----------------------------------------------------------------------


def _shape(value: object, where: str, allow_empty: bool) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise InputSpecError(
            f"{where} has shape {value!r}; a shape is a list of whole numbers",
            hint="set \"shape\", e.g. [1, 3, 224, 224] or [2] for two images",
        )
    if len(value) > MAX_RANK:
        raise InputSpecError(
            f"{where} has a shape of {len(value)} dimensions; mmship takes at most {MAX_RANK}",
            hint="send the tensor with the model's own dimensions (see GET /v2/models/<name>)",
        )
    if any(d < 0 for d in value):
        raise InputSpecError(
            f"{where} has shape {format_shape(value)}; a request needs actual sizes, not -1",
            hint="put the actual size of every dimension in the shape",
        )
    if not allow_empty and any(d == 0 for d in value):
        raise InputSpecError(
            f"{where} has an empty batch (shape {format_shape(value)})",
            hint="send at least one item, or leave the input out",
        )
    return list(value)


def read_entries(
    items: object,
    kind: str,
    rest: bytes | memoryview | None,
    *,
    allow_empty: bool = False,
) -> list[WireTensor]:
    """Validate an ``inputs``/``outputs`` list and attach binary sections.

    :param items: the JSON list.
    :param kind: ``input`` or ``output``, for messages.
    :param rest: the bytes after the JSON header, or ``None`` for a JSON-only body.
    :param allow_empty: accept zero-sized dimensions (responses).
    """
    plural = kind + "s"
    if not isinstance(items, list) or not items:
        raise InputSpecError(
            f"the body has no {plural!r} list" if not isinstance(items, list) else f"the {plural!r} list is empty",
            hint=f"send {{\"{plural}\": [{_EXAMPLE}]}}",
        )
    sections = slice_sections(items, rest, kind) if rest is not None else {}
    result: list[WireTensor] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InputSpecError(f"{kind} {index} is a {type(item).__name__}, not an object", hint=f"send {_EXAMPLE}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InputSpecError(f"{kind} {index} has no name", hint=f"give every {kind} a \"name\", e.g. {_EXAMPLE}")
        where = f"{kind} {name!r}"
        if name in seen:
            raise InputSpecError(f"{where} appears twice", hint=f"send each {kind} once; put several items in one tensor")
        seen.add(name)
        if "datatype" not in item and "type" in item:
            raise InputSpecError(
                f"{where} has \"type\": {item['type']!r} but no \"datatype\" and \"shape\"",
                hint=f"Open Inference Protocol v2 tensors look like {_EXAMPLE}",
            )
        datatype = normalize_datatype(item.get("datatype"), where)
        if "shape" not in item:
            raise InputSpecError(f"{where} has no shape", hint=f"set \"shape\", e.g. {_EXAMPLE}")
        shape = _shape(item.get("shape"), where, allow_empty)
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise InputSpecError(f"{where} has parameters {parameters!r}; they must be an object", hint="send \"parameters\": {}")
        tensor = WireTensor(name, datatype, shape, dict(parameters), where=where)
        if rest is None and binary_data_size(item, where) is not None:
            raise InputSpecError(
                f"{where} declares binary_data_size but the body has no Inference-Header-Content-Length header",
                hint="set Inference-Header-Content-Length to the length of the JSON part",
            )
        if index in sections:
            if item.get("data") is not None:
                raise InputSpecError(f"{where} has both \"data\" and binary_data_size", hint="send the values one way only")
            tensor.section = sections[index]
        elif "data" in item and item["data"] is not None:
            if datatype in BINARY_ONLY:
                raise InputSpecError(
                    f"{where} is {datatype} in JSON; {datatype} travels only as binary data",
                    hint="send it with the binary extension (parameters.binary_data_size), or as FP32",
                )
            tensor.data = item["data"]
        else:
            raise InputSpecError(f"{where} has no data", hint="send \"data\", or binary data with parameters.binary_data_size")
        result.append(tensor)
    return result


def _leaves(data: Any) -> list[Any]:
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _count_error(tensor: WireTensor, got: int) -> InputSpecError:
    return InputSpecError(
        f"{tensor.where}: shape {format_shape(tensor.shape)} needs {tensor.count} values, got {got}",
        hint="send exactly as many values as the shape holds (flat or nested, row-major), or fix the shape",
    )


def _not_numbers(tensor: WireTensor, data: list[Any]) -> InputSpecError:
    bad = next((v for v in _leaves(data) if isinstance(v, str) or not isinstance(v, (int, float, bool))), None)
    return InputSpecError(
        f"{tensor.where} is {tensor.datatype} but its data holds {type(bad).__name__} values such as {bad!r:.40}",
        hint=f"send numbers for {tensor.datatype} (BYTES is the datatype for strings and images)",
    )


def _integers(tensor: WireTensor, leaves: list[Any]) -> np.ndarray:
    """Whole numbers of an integer datatype, checked exactly (no float rounding)."""
    dtype = NUMPY_DTYPES[tensor.datatype]
    info = np.iinfo(dtype)
    whole: list[int] = []
    for value in leaves:
        if isinstance(value, float):
            if not np.isfinite(value) or value != round(value):
                raise InputSpecError(
                    f"{tensor.where} is {tensor.datatype} but holds non-integer values such as {value!r}",
                    hint="send whole numbers, or declare the datatype that matches the values (e.g. FP32)",
                )
            value = int(value)
        if not info.min <= value <= info.max:
            raise InputSpecError(
                f"{tensor.where} is {tensor.datatype} but holds {value}, outside [{info.min}, {info.max}]",
                hint="declare a wider datatype, or fix the values",
            )
        whole.append(int(value))
    return np.array(whole, dtype=dtype)


def _json_array(tensor: WireTensor) -> np.ndarray:
    dtype = NUMPY_DTYPES[tensor.datatype]
    data = tensor.data if isinstance(tensor.data, list) else [tensor.data]
    try:
        values = np.asarray(data)
    except ValueError:
        raise InputSpecError(
            f"{tensor.where} has nested data with rows of different lengths",
            hint="send the values flat in row-major order, or nested with equal-length rows",
        ) from None
    if values.dtype.kind not in "biufO" or (values.dtype.kind == "O" and dtype.kind not in "iu"):
        raise _not_numbers(tensor, data)
    flat = values.ravel()
    if flat.size != tensor.count:
        raise _count_error(tensor, int(flat.size))
    if dtype.kind in "iu":
        if flat.dtype.kind in "fO":
            # Floats, or ints too large for int64: check each value exactly, in Python.
            leaves = _leaves(data)
            if any(isinstance(v, str) or not isinstance(v, (int, float)) for v in leaves):
                raise _not_numbers(tensor, data)
            return _integers(tensor, leaves).reshape(tensor.shape)
        if flat.size and flat.dtype.kind in "iu":
            info = np.iinfo(dtype)
            low, high = int(flat.min()), int(flat.max())
            if low < info.min or high > info.max:
                _integers(tensor, [low if low < info.min else high])  # raises: says which value
    elif dtype.kind == "b" and flat.dtype.kind != "b":
        if flat.size and not np.all((flat == 0) | (flat == 1)):
            raise InputSpecError(f"{tensor.where} is BOOL but holds values other than true/false", hint="send true or false")
    return flat.astype(dtype).reshape(tensor.shape)


def entry_array(tensor: WireTensor) -> np.ndarray:
    """The values of a numeric tensor with its declared dtype and shape, or a ``BYTES``
    tensor as an ``object`` array of ``bytes`` (JSON strings: UTF-8, or base64-decoded
    when ``parameters.content_type`` is ``base64``)."""
    if tensor.datatype == BYTES:
        items: list[bytes] = []
        if tensor.section is not None:
            items = section_to_tensor(tensor.section, BYTES, tensor.shape, tensor.where).ravel().tolist()
        else:
            is_b64 = str(tensor.parameters.get("content_type", "")).lower() == "base64"
            for i, text in enumerate(entry_strings(tensor)):
                if is_b64:
                    from mmship.payload.images import decode_base64

                    items.append(decode_base64(text, f"{tensor.where} element {i}"))
                else:
                    items.append(text.encode("utf-8"))
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(tensor.shape)
    if tensor.section is not None:
        return section_to_tensor(tensor.section, tensor.datatype, tensor.shape, tensor.where)
    return _json_array(tensor)


def entry_strings(tensor: WireTensor) -> list[str]:
    """The JSON strings of a ``BYTES`` tensor, flattened row-major and counted."""
    strings = _leaves(tensor.data if isinstance(tensor.data, list) else [tensor.data])
    for i, value in enumerate(strings):
        if not isinstance(value, str):
            raise InputSpecError(
                f"{tensor.where} element {i} is a {type(value).__name__}; BYTES data in JSON are strings",
                hint="send strings (base64 for images, with parameters.content_type \"base64\")",
            )
    if len(strings) != tensor.count:
        raise _count_error(tensor, len(strings))
    return strings


def entry_bytes(tensor: WireTensor) -> list[bytes]:
    """The elements of a binary ``BYTES`` tensor."""
    assert tensor.section is not None
    return entry_array(tensor).ravel().tolist()


# --- writing ----------------------------------------------------------------------


def array_entry(
    name: str, array: Any, binary: bool, *, fp16_as_fp32: bool = False, parameters: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], bytes | None]:
    """A tensor entry for ``array`` and its binary section (``None`` in JSON mode).

    :param binary: send the values as a binary section.
    :param fp16_as_fp32: in JSON mode, write FP16 as FP32 (responses) instead of raising.
    """
    values = np.asarray(array) if not isinstance(array, np.ndarray) else array
    if values.dtype.kind in "SU":
        values = values.astype(object)
    datatype = datatype_of(values)
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [int(d) for d in values.shape]}
    params = dict(parameters or {})
    if binary:
        section = tensor_to_section(values, datatype)
        params["binary_data_size"] = len(section)
        entry["parameters"] = params
        return entry, section
    if datatype in BINARY_ONLY:
        if not fp16_as_fp32:
            raise InputSpecError(
                f"{name!r} is {datatype}, which travels only as binary data",
                hint="use the binary protocol (v2-binary), or cast the array to float32",
            )
        values = values.astype(np.float32)
        entry["datatype"] = "FP32"
    if datatype == BYTES:
        items = [v if isinstance(v, (bytes, bytearray)) else str(v).encode("utf-8") for v in values.ravel().tolist()]
        try:
            entry["data"] = [bytes(v).decode("utf-8") for v in items]
        except UnicodeDecodeError:
            entry["data"] = [base64.b64encode(v).decode("ascii") for v in items]
            params["content_type"] = "base64"
    else:
        if values.dtype.kind in "fc" and values.size and not np.isfinite(values).all():
            raise InputSpecError(
                f"{name!r} holds NaN or infinite values, which JSON cannot carry",
                hint="ask for it as binary data (binary_data_output / v2-binary), or check the inputs that produced it",
            )
        entry["data"] = values.ravel(order="C").tolist()
    if params:
        entry["parameters"] = params
    return entry, None
