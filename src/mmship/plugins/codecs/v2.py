"""Open Inference Protocol v2 codec, JSON and binary (plugin ``codec-v2``).

Server side: :func:`decode_v2_request` and :func:`encode_v2_response`.
Client side: :func:`encode_v2_request` and :func:`decode_v2_response`.

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
from urllib.parse import quote

import numpy as np

from mmship import hookimpl
from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import DecodedRequest, EncodedRequest, PayloadInputs
from mmship.payload.binary import (
    HEADER_LENGTH,
    header_length_of,
    join_body,
    parse_json,
    serialize_bytes_tensor,
    split_body,
)
from mmship.payload.images import (
    check_encoded_image,
    decode_base64,
    decode_image_text,
    encode_image_text,
)
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
OPTION_OUTPUTS = "outputs"
OPTION_BINARY_OUTPUTS = "binary_outputs"
OPTION_PARAMETERS = "parameters"
OPTION_REQUEST_ID = "request_id"
OPTION_VERSION = "version"

JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"


# --- server side ------------------------------------------------------------------


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
    return json.dumps(doc, separators=(",", ":")).encode("utf-8"), {"content-type": JSON_TYPE}


# --- client side ------------------------------------------------------------------


def infer_path(model: str, version: str | None = None) -> str:
    """``/v2/models/{model}[/versions/{version}]/infer``."""
    path = f"/v2/models/{quote(model, safe='')}"
    if version:
        path += f"/versions/{quote(str(version), safe='')}"
    return path + "/infer"


def encode_v2_request(inputs: PayloadInputs, binary: bool) -> EncodedRequest:
    """A v2 infer request for ``inputs``: images as the BYTES input ``image`` (base64 in
    JSON, raw in binary), texts as ``text``, tensors by name.

    ``inputs.options`` may hold ``outputs`` (names to ask for), ``request_id``,
    ``parameters`` and ``version``. In binary mode outputs are asked for binary too.
    """
    entries: list[dict[str, Any]] = []
    sections: list[bytes] = []
    if inputs.images:
        images = [check_encoded_image(bytes(b), f"image {i}") for i, b in enumerate(inputs.images)]
        entry: dict[str, Any] = {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [len(images)]}
        if binary:
            sections.append(serialize_bytes_tensor(images))
            entry["parameters"] = {"binary_data_size": len(sections[-1])}
        else:
            entry["data"] = [encode_image_text(b) for b in images]
            entry["parameters"] = {"content_type": "base64"}
        entries.append(entry)
    if inputs.texts:
        entry = {"name": TEXT_INPUT, "datatype": "BYTES", "shape": [len(inputs.texts)]}
        if binary:
            sections.append(serialize_bytes_tensor(inputs.texts))
            entry["parameters"] = {"binary_data_size": len(sections[-1])}
        else:
            entry["data"] = list(inputs.texts)
        entries.append(entry)
    for name, array in inputs.tensors.items():
        tensor_entry, section = array_entry(name, array, binary)
        entries.append(tensor_entry)
        if section is not None:
            sections.append(section)
    if not entries:
        raise InputSpecError("there is nothing to send", hint="give at least one image, text or tensor")
    doc: dict[str, Any] = {}
    options = inputs.options
    if options.get(OPTION_REQUEST_ID) is not None:
        doc["id"] = str(options[OPTION_REQUEST_ID])
    parameters = dict(options.get(OPTION_PARAMETERS) or {})
    doc["inputs"] = entries
    names = list(options.get(OPTION_OUTPUTS) or [])
    if names:
        doc["outputs"] = [{"name": n, "parameters": {"binary_data": binary}} for n in names]
    elif binary:
        parameters["binary_data_output"] = True
    if parameters:
        doc["parameters"] = parameters
    path = infer_path(inputs.model, options.get(OPTION_VERSION))
    if binary:
        body, length = join_body(doc, sections)
        return EncodedRequest("POST", path, body, {"content-type": BINARY_TYPE, HEADER_LENGTH: str(length)})
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return EncodedRequest("POST", path, body, {"content-type": JSON_TYPE})


def decode_v2_response(body: bytes, headers: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The outputs of a v2 infer response (JSON or binary) as numpy arrays by name;
    BYTES outputs are ``object`` arrays of ``bytes``.

    :raises MmshipError: with the server's message for an ``{"error": ...}`` body, or
        saying what is malformed.
    """
    raw_length = header_length_of(headers)
    try:
        head, rest = split_body(body, raw_length, "response")
        doc = parse_json(head, "response", binary=raw_length is not None)
        if isinstance(doc, dict) and "error" in doc:
            raise MmshipError(str(doc["error"]))
        if not isinstance(doc, dict):
            raise InputSpecError(f"the response is a JSON {type(doc).__name__}, not an object")
        entries = read_entries(doc.get("outputs"), "output", rest if raw_length is not None else None, allow_empty=True)
        return {tensor.name: entry_array(tensor) for tensor in entries}
    except InputSpecError as exc:
        raise MmshipError(
            f"malformed Open Inference Protocol v2 response: {exc.message}",
            hint="check that the URL is an Open Inference Protocol v2 server (mmship serve)",
        ) from None


# --- plugin hooks -----------------------------------------------------------------


@hookimpl
def mmship_encode_payload(inputs: PayloadInputs, protocol: str) -> EncodedRequest | None:
    """Encode protocols ``v2`` (JSON) and ``v2-binary`` (binary tensor data)."""
    if protocol == "v2":
        return encode_v2_request(inputs, binary=False)
    if protocol == "v2-binary":
        return encode_v2_request(inputs, binary=True)
    return None


@hookimpl
def mmship_decode_payload(body: bytes, headers: Mapping[str, str], protocol: str) -> DecodedRequest | None:
    """Decode protocol ``v2`` requests, JSON or binary (told apart by the headers)."""
    if protocol in ("v2", "v2-binary"):
        return decode_v2_request(body, headers)
    return None
