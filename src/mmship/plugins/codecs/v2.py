"""Open Inference Protocol v2 codec, JSON and binary (plugin ``codec-v2``).

One codec, :class:`V2Codec`, mounted on ``/v2/models/{model}/infer`` (and the
``/versions/{version}/`` form), speaking protocols ``v2`` (JSON) and ``v2-binary``
(Triton's binary tensor data extension). The server tells JSON from binary by the
``Inference-Header-Content-Length`` header, as KServe and Triton do. The wire functions
live in :mod:`.v2_server` (requests in, responses out) and :mod:`.v2_client` (requests
out, responses in) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mmship import hookimpl
from mmship.core.codec import Codec, Operation
from mmship.core.payload import (
    DecodedRequest,
    EncodedRequest,
    EncodedResponse,
    InferOutputs,
    PayloadInputs,
)
from mmship.plugins.codecs.v2_client import (
    decode_v2_response,
    encode_v2_request,
    infer_path,
    read_v2_response,
)
from mmship.plugins.codecs.v2_server import (
    BINARY_TYPE,
    IMAGE_INPUT,
    JSON_TYPE,
    KNOWN_INPUTS,
    OPTION_BINARY_OUTPUTS,
    OPTION_OUTPUTS,
    OPTION_PARAMETERS,
    OPTION_REQUEST_ID,
    OPTION_VERSION,
    TEXT_INPUT,
    binary_selection,
    decode_v2_request,
    encode_v2_response,
)

__all__ = [
    "BINARY_TYPE", "IMAGE_INPUT", "JSON_TYPE", "KNOWN_INPUTS", "OPTION_BINARY_OUTPUTS", "OPTION_OUTPUTS",
    "OPTION_PARAMETERS", "OPTION_REQUEST_ID", "OPTION_VERSION", "TEXT_INPUT", "V2Codec", "binary_selection",
    "decode_v2_request", "decode_v2_response", "encode_v2_request", "encode_v2_response", "infer_path",
    "read_v2_response",
]

#: OpenAPI description of the infer body (JSON, or the binary extension).
V2_INFER_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object", "description": "Open Inference Protocol v2 request"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description": "binary-data extension"}},
        }
    }
}


class V2Codec(Codec[InferOutputs]):
    """Open Inference Protocol v2 infer requests and responses, JSON and binary."""

    name = "v2"
    description = "Open Inference Protocol v2 (KServe, Triton), JSON and binary tensor data"
    operation: ClassVar[Operation] = "infer"
    routes = ("/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer")
    protocols = ("v2", "v2-binary")
    openapi: ClassVar[Mapping[str, Any]] = V2_INFER_BODY

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """Protocol ``v2``: JSON; ``v2-binary``: binary tensor data, outputs asked binary."""
        return encode_v2_request(inputs, binary=protocol == "v2-binary")

    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> InferOutputs:
        """The outputs of a JSON or binary infer response."""
        return read_v2_response(body, {k.lower(): v for k, v in headers.items()})

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """A JSON or binary infer request (see :func:`decode_v2_request`)."""
        return decode_v2_request(body, headers)

    def encode_response(self, answer: InferOutputs, request: DecodedRequest) -> EncodedResponse:
        """The outputs, each binary or JSON as the request asked; ``parameters.truncated``
        when a text was cut."""
        body, headers = encode_v2_response(
            answer.model, answer.model_version, request.request_id, answer.outputs, binary_selection(request),
            parameters={"truncated": answer.truncated} if any(answer.truncated) else None,
        )
        return EncodedResponse(body, headers)


@hookimpl
def mmship_register_codecs(register: Any) -> None:
    """Register the Open Inference Protocol v2 codec."""
    register(V2Codec)
