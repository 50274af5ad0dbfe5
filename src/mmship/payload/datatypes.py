"""Open Inference Protocol v2 datatypes and their numpy equivalents.

Numeric tensors travel little-endian and row-major; ``BYTES`` tensors are lists of byte
strings (numpy ``object`` arrays of ``bytes``). ``BF16`` has no numpy dtype and is not
accepted.
"""

from __future__ import annotations

import numpy as np

from mmship.core.errors import InputSpecError

BYTES = "BYTES"

#: v2 datatype -> little-endian numpy dtype (``BYTES`` is handled apart).
NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

#: Every datatype this codec reads and writes.
DATATYPES: tuple[str, ...] = (*NUMPY_DTYPES, BYTES)

#: Datatypes that may only travel as binary data (no JSON representation).
BINARY_ONLY: frozenset[str] = frozenset({"FP16"})

_ALIASES = {
    "FLOAT": "FP32", "FLOAT32": "FP32", "F32": "FP32", "SINGLE": "FP32",
    "FLOAT16": "FP16", "HALF": "FP16", "F16": "FP16",
    "FLOAT64": "FP64", "DOUBLE": "FP64", "F64": "FP64",
    "INT": "INT64", "LONG": "INT64", "I64": "INT64", "I32": "INT32",
    "BOOLEAN": "BOOL", "BYTE": "BYTES", "STRING": "BYTES", "STR": "BYTES", "TEXT": "BYTES",
    "BASE64": "BYTES", "OBJECT": "BYTES", "UINT": "UINT64",
}


def normalize_datatype(value: object, where: str) -> str:
    """The canonical (upper-case) datatype of ``value``; raises with the list of valid
    datatypes (and the likely one) when it is unknown."""
    if not isinstance(value, str) or not value.strip():
        raise InputSpecError(
            f"{where} has no datatype (got {value!r})",
            hint=f"set \"datatype\" to one of {', '.join(DATATYPES)}",
        )
    name = value.strip().upper()
    if name in DATATYPES:
        return name
    if name == "BF16":
        raise InputSpecError(
            f"{where} has datatype BF16, which mmship does not accept", hint="send the tensor as FP32 (or FP16 in binary)"
        )
    guess = _ALIASES.get(name)
    suggestion = f"use {guess}" if guess else f"use one of {', '.join(DATATYPES)}"
    raise InputSpecError(f"{where} has unknown datatype {value!r}", hint=suggestion)


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype of a numpy array (``object``/``bytes``/``str`` arrays are BYTES)."""
    name = v2_datatype(array.dtype)
    if name == BYTES or name in NUMPY_DTYPES:
        return name
    raise InputSpecError(
        f"numpy dtype {array.dtype} has no Open Inference Protocol v2 datatype",
        hint="cast the array to float32, int64 or another supported dtype",
    )


def v2_datatype(dtype: str | np.dtype) -> str:
    """The v2 datatype of a spec or numpy dtype (``float32`` -> ``FP32``, ``bytes`` ->
    ``BYTES``); a dtype v2 has no name for is returned as numpy names it."""
    numpy_dtype = np.dtype(dtype)
    if numpy_dtype.kind in "OSU":
        return BYTES
    for name, candidate in NUMPY_DTYPES.items():
        if (candidate.kind, candidate.itemsize) == (numpy_dtype.kind, numpy_dtype.itemsize):
            return name
    return numpy_dtype.name


def element_count(shape: list[int]) -> int:
    """Number of elements of a tensor with ``shape`` (1 for a scalar)."""
    count = 1
    for dim in shape:
        count *= dim
    return count


def format_shape(shape: list[int] | tuple[int, ...]) -> str:
    """``[2, 77]`` as people write it."""
    return "[" + ", ".join(str(d) for d in shape) + "]"
