"""Open Inference Protocol v2, JSON and binary: the server side (requests in, responses out).

Inputs mmship knows by name: raw tensors ``pixel_values`` (FP32 ``[N,3,H,W]``),
``input_ids`` and ``attention_mask`` (INT64 ``[N,L]``), and the high-level BYTES inputs
``image`` (encoded JPEG/PNG/WebP: base64 or data URIs in JSON, raw bytes in binary
mode) and ``text`` (UTF-8). Other names pass through as tensors of their declared
datatype, for the model to accept or refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmship.core import payload
from mmship.core.errors import InputSpecError
from mmship.core.payload import DecodedRequest, PayloadInputs
from mmship.payload.binary import (
    HEADER_LENGTH,
    header_length_of,
    join_body,
    parse_json,
    split_body,
)
from mmship.payload.images import check_encoded_image, decode_base64, decode_image_text
from mmship.payload.tensors import (
    WireTensor,
    array_entry,
    entry_array,
    entry_bytes,
    entry_strings,
    read_entries,
)

IMAGE_INPUT = "image"
TEXT_INPUT = "text"

#: Inputs mmship knows: accepted datatypes and what they hold (for messages).
KNOWN_INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "pixel_values": (("FP32", "FP16"), "preprocessed pixels, float32 [N, 3, H, W]"),
    "input_ids": (("INT64", "INT32"), "token ids, int64 [N, L]"),
    "attention_mask": (("INT64", "INT32"), "the token mask, int64 [N, L]"),
    "token_type_ids": (("INT64", "INT32"), "token type ids, int64 [N, L]"),
    IMAGE_INPUT: (("BYTES",), "encoded JPEG/PNG/WebP files, one per element"),
    TEXT_INPUT: (("BYTES",), "UTF-8 strings, one per element"),
}

#: ``PayloadInputs.options`` keys this codec reads (client) and writes (server).
OPTION_OUTPUTS = payload.OPTION_OUTPUTS
OPTION_BINARY_OUTPUTS = "binary_outputs"
OPTION_PARAMETERS = "parameters"
OPTION_REQUEST_ID = "request_id"
OPTION_VERSION = "version"

JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"



def _check_known(tensor: WireTensor) -> None:
    known = KNOWN_INPUTS.get(tensor.name)
    if known is None or tensor.datatype in known[0]:
        return
    accepted, meaning = known
    hint = f"send {tensor.name!r} with datatype {accepted[0]} ({meaning})"
    if tensor.name == IMAGE_INPUT:
        hint = (
            "send the image files' bytes as BYTES (base64 in JSON), not decoded pixels; preprocessed pixels go in "
            "'pixel_values' as FP32 [N, 3, H, W]"
        )
    raise InputSpecError(f"input {tensor.name!r} must be {' or '.join(accepted)}, got {tensor.datatype}", hint=hint)


def _images(tensor: WireTensor) -> list[bytes]:
    if tensor.section is not None:
        return [check_encoded_image(b, f"input 'image' element {i}") for i, b in enumerate(entry_bytes(tensor))]
    return [decode_image_text(s, f"input 'image' element {i}") for i, s in enumerate(entry_strings(tensor))]


def _texts(tensor: WireTensor) -> list[str]:
    if tensor.section is None:
        strings = entry_strings(tensor)
        if str(tensor.parameters.get("content_type", "")).lower() != "base64":
            return strings
        raw = [decode_base64(s, f"input 'text' element {i}") for i, s in enumerate(strings)]
    else:
        raw = entry_bytes(tensor)
    texts = []
    for i, item in enumerate(raw):
        try:
            texts.append(item.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InputSpecError(
                f"input 'text' element {i} is not UTF-8 (byte {exc.start} is {item[exc.start]:#04x})",
                hint="encode texts as UTF-8",
            ) from None
    return texts


def _requested_outputs(items: object, parameters: Mapping[str, Any]) -> tuple[list[str], set[str] | bool]:
    default = parameters.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise InputSpecError(f"parameters.binary_data_output is {default!r}", hint="set it to true or false")
    if items is None:
        return [], default
    if not isinstance(items, list):
        raise InputSpecError(f"\"outputs\" is a {type(items).__name__}", hint='send "outputs": [{"name": "image_embeds"}]')
    names: list[str] = []
    binary: set[str] = set()
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InputSpecError(f"requested output {index} has no name", hint='send {"name": "image_embeds"}')
        params = item.get("parameters") or {}
        flag = params.get("binary_data", default) if isinstance(params, Mapping) else default
        if not isinstance(flag, bool):
            raise InputSpecError(f"output {name!r} has binary_data {flag!r}", hint="set it to true or false")
        if name not in names:
            names.append(name)
        if flag:
            binary.add(name)
    return names, binary


def decode_v2_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """Decode a v2 infer request, JSON or binary (``Inference-Header-Content-Length``).

    Returns images (encoded bytes), texts and other tensors (numpy arrays with their
    declared dtype and shape) in :class:`PayloadInputs`; the requested outputs and
    whether they go back binary; the request id. ``inputs.options`` holds the request
    ``parameters`` and ``binary_outputs``: ``True`` (all), or the set of output names.

    :raises InputSpecError: naming what was expected, what came and the fix.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    encoding = lower.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise InputSpecError(
            f"the request body is compressed (Content-Encoding: {encoding}); mmship reads uncompressed bodies",
            hint="send the request uncompressed",
        )
    raw_length = header_length_of(lower)
    head, rest = split_body(body, raw_length, "request")
    doc = parse_json(head, "request", binary=raw_length is not None)
    if not isinstance(doc, dict):
        raise InputSpecError(
            f"the request body is a JSON {type(doc).__name__}, not an object", hint='send {"inputs": [...]}'
        )
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InputSpecError(f"the request id is {request_id!r}; ids are strings", hint=f'send "id": "{request_id}"')
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise InputSpecError(f"the request parameters are {parameters!r}", hint="send \"parameters\" as an object")
    inputs = PayloadInputs()
    for tensor in read_entries(doc.get("inputs"), "input", rest if raw_length is not None else None):
        _check_known(tensor)
        if tensor.name == IMAGE_INPUT:
            inputs.images = _images(tensor)
        elif tensor.name == TEXT_INPUT:
            inputs.texts = _texts(tensor)
        else:
            inputs.tensors[tensor.name] = entry_array(tensor)
    names, binary = _requested_outputs(doc.get("outputs"), parameters)
    inputs.options = {OPTION_PARAMETERS: dict(parameters), OPTION_BINARY_OUTPUTS: binary}
    return DecodedRequest(inputs=inputs, requested_outputs=names, binary_outputs=bool(binary), request_id=request_id)


def binary_selection(decoded: DecodedRequest) -> set[str] | bool:
    """Which outputs go back binary: ``True`` (all) or a set of names; pass it to
    :func:`encode_v2_response`."""
    return decoded.inputs.options.get(OPTION_BINARY_OUTPUTS, decoded.binary_outputs)


def encode_v2_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Mapping[str, np.ndarray],
    binary: set[str] | bool,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A v2 infer response body and its headers (lower-case names).

    :param binary: ``True`` for all outputs binary, ``False`` for JSON, or the names of
        the outputs to send binary. FP16 outputs asked for as JSON are written as FP32.
    :return: ``(body, headers)``; headers hold ``content-type`` and, when any output is
        binary, ``inference-header-content-length``.
    """
    doc: dict[str, Any] = {"model_name": model_name, "model_version": str(model_version)}
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = dict(parameters)
    entries: list[dict[str, Any]] = []
    sections: list[bytes] = []
    any_binary = False
    for name, array in outputs.items():
        as_binary = binary is True or (not isinstance(binary, bool) and name in binary)
        entry, section = array_entry(name, array, as_binary, fp16_as_fp32=True)
        entries.append(entry)
        if section is not None:
            sections.append(section)
            any_binary = True
    doc["outputs"] = entries
    if any_binary:
        body, length = join_body(doc, sections)
        return body, {"content-type": BINARY_TYPE, HEADER_LENGTH: str(length)}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8"), {"content-type": JSON_TYPE}
