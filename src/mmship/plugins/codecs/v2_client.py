"""Open Inference Protocol v2, JSON and binary: the client side (requests out, responses in)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import numpy as np

from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import EncodedRequest, InferOutputs, PayloadInputs
from mmship.payload.binary import (
    HEADER_LENGTH,
    header_length_of,
    join_body,
    parse_json,
    serialize_bytes_tensor,
    split_body,
)
from mmship.payload.images import check_encoded_image, encode_image_text
from mmship.payload.tensors import array_entry, entry_array, read_entries
from mmship.plugins.codecs.v2_server import (
    BINARY_TYPE,
    IMAGE_INPUT,
    JSON_TYPE,
    OPTION_OUTPUTS,
    OPTION_PARAMETERS,
    OPTION_REQUEST_ID,
    OPTION_VERSION,
    TEXT_INPUT,
)


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


def read_v2_response(body: bytes, headers: Mapping[str, str]) -> InferOutputs:
    """A v2 infer response (JSON or binary): the outputs as numpy arrays by name (BYTES
    outputs are ``object`` arrays of ``bytes``), the model, its version, the request id
    and which texts were truncated (``parameters.truncated``).

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
        outputs = {tensor.name: entry_array(tensor) for tensor in entries}
    except InputSpecError as exc:
        raise MmshipError(
            f"malformed Open Inference Protocol v2 response: {exc.message}",
            hint="check that the URL is an Open Inference Protocol v2 server (mmship serve)",
        ) from None
    parameters = doc.get("parameters")
    truncated = parameters.get("truncated") if isinstance(parameters, Mapping) else None
    request_id = doc.get("id")
    return InferOutputs(
        model=str(doc.get("model_name", "")),
        outputs=outputs,
        truncated=[bool(t) for t in truncated] if isinstance(truncated, list) else [],
        model_version=str(doc.get("model_version", "")),
        request_id=request_id if isinstance(request_id, str) else None,
    )


def decode_v2_response(body: bytes, headers: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The outputs of a v2 infer response by name (see :func:`read_v2_response`)."""
    return read_v2_response(body, headers).outputs
