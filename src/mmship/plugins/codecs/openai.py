"""OpenAI-compatible embeddings (plugin ``codec-openai``).

``POST /v1/embeddings`` ``{"model", "input", "encoding_format", "dimensions", "user"}`` (plus
peers' ways of sending images, see :mod:`.openai_schemas`) -> ``{"object": "list", "data":
[{"object": "embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens",
"total_tokens"}}``; ``GET /v1/models`` (and ``/v1/models/{model}``) lists the served
models; every error under ``/v1/`` is OpenAI's ``{"error": {"message", "type", "param",
"code"}}``. ``encoding_format="base64"`` (what the ``openai`` client asks for) is the
little-endian float32 bytes of each vector.

The codec speaks operation ``embed_items``: the server embeds the items in order, fetches
image URLs when its operator allows it, truncates to ``dimensions`` where the model allows
it and counts the tokens; the codec only translates.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mmship import hookimpl
from mmship.core.codec import Codec, Operation
from mmship.core.errors import InputSpecError, MmshipError, RequestFieldError
from mmship.core.payload import (
    OPTION_DIMENSIONS,
    DecodedRequest,
    EmbedItem,
    EncodedRequest,
    EncodedResponse,
    ItemEmbeddings,
    ModelCard,
    PayloadInputs,
)
from mmship.payload.images import check_encoded_image, encode_image_text
from mmship.payload.json_out import dump_json
from mmship.plugins.codecs.embed_schemas import openapi_fields, read_json_body
from mmship.plugins.codecs.openai_schemas import EmbeddingsRequest, EmbeddingsResponse, request_items

#: ``PayloadInputs.options`` key: ``float`` or ``base64``, as the request asked.
OPTION_ENCODING = "encoding_format"
#: The model name a client leaves out: the server's only model.
DEFAULT_MODEL = PayloadInputs().model
_JSON = {"content-type": "application/json"}

#: HTTP status -> OpenAI's error ``type`` and default ``code``.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    503: ("server_error", "overloaded"),
    504: ("server_error", "timeout"),
}


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# --- server side ------------------------------------------------------------------


def decode_embeddings_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """A ``POST /v1/embeddings`` body -> the ``embed_items`` request: ``inputs.items`` in
    order, ``inputs.model`` (the default name when absent), ``options["dimensions"]`` and
    ``options["encoding_format"]``."""
    try:
        request = read_json_body(body, headers, EmbeddingsRequest)
    except InputSpecError as exc:
        raise RequestFieldError(exc.message, hint=exc.hint, field=_invalid_field(body)) from None
    options: dict[str, Any] = {OPTION_ENCODING: request.encoding_format}
    if request.dimensions is not None:
        options[OPTION_DIMENSIONS] = request.dimensions
    inputs = PayloadInputs(items=request_items(request), model=request.model or DEFAULT_MODEL, options=options)
    return DecodedRequest(inputs=inputs)


def _invalid_field(body: bytes) -> str | None:
    """The first field an invalid body gets wrong (OpenAI's ``param``), when it parses."""
    from pydantic import ValidationError

    try:
        EmbeddingsRequest.model_validate(json.loads(body))
    except ValidationError as exc:
        location = exc.errors()[0].get("loc", ())
        return str(location[0]) if location else None
    except (ValueError, RecursionError):
        return None
    return None


def _vector(row: np.ndarray, encoding: str) -> np.ndarray | str:
    if encoding == "base64":
        return base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii")
    return np.ascontiguousarray(row, dtype=np.float64)  # written as a list of floats by dump_json


def encode_embeddings_response(answer: ItemEmbeddings, encoding: str = "float") -> EncodedResponse:
    """OpenAI's embeddings list for ``answer``, each vector as floats or base64 float32."""
    data = [{"object": "embedding", "index": i, "embedding": _vector(row, encoding)} for i, row in enumerate(answer.embeddings)]
    usage = {"prompt_tokens": answer.prompt_tokens, "total_tokens": answer.prompt_tokens}
    return EncodedResponse(dump_json({"object": "list", "data": data, "model": answer.model, "usage": usage}), dict(_JSON))


def model_object(card: ModelCard) -> dict[str, Any]:
    """OpenAI's model object, with what mmship knows besides (extra keys clients keep)."""
    return {
        "id": card.name, "object": "model", "created": card.created, "owned_by": card.owned_by,
        "modalities": card.modalities, "dimensions": card.dimensions,
        "matryoshka_dimensions": card.matryoshka_dimensions, "max_input_tokens": card.max_input_tokens,
        "adapter": card.adapter, "precision": card.precision,
    }


def openai_error(status: int, message: str, error: BaseException | None = None) -> dict[str, Any]:
    """OpenAI's error object for an answer with ``status``: ``type`` from the status,
    ``param`` and ``code`` from the error when it names them."""
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {
        "error": {
            "message": message, "type": kind, "param": getattr(error, "field", None),
            "code": getattr(error, "code", None) or code,
        }
    }


# --- client side ------------------------------------------------------------------


def encode_embeddings_request(inputs: PayloadInputs) -> EncodedRequest:
    """``POST /v1/embeddings`` for ``inputs.items`` (or its texts, then its images): plain
    strings when all are texts, else Jina-style ``{"text"}``/``{"image"}`` objects with
    images as data URIs; vectors asked as base64."""
    if inputs.tensors:
        raise InputSpecError(f"/v1/embeddings takes texts and images, not raw tensors ({', '.join(inputs.tensors)})", hint="use the v2 protocol")
    items = inputs.items or [*map(EmbedItem.text, inputs.texts), *map(EmbedItem.image, inputs.images)]
    if not items:
        raise InputSpecError("there is nothing to embed", hint="give at least one image or text")
    has_images = any(item.kind in ("image", "image_url") for item in items)
    if has_images and any(item.kind == "tokens" for item in items):
        raise InputSpecError("token ids cannot travel beside images in one request", hint="send them in a request of their own")
    entries: list[Any] = []
    for item in items:
        if item.kind == "image":
            entries.append({"image": encode_image_text(check_encoded_image(bytes(item.value), "image"), data_uri=True)})  # type: ignore[arg-type]
        elif item.kind == "image_url":
            entries.append({"image": item.value})
        elif item.kind == "tokens":
            entries.append(list(item.value))  # type: ignore[arg-type]
        else:
            entries.append({"text": item.value} if has_images else item.value)
    doc: dict[str, Any] = {"input": entries, "encoding_format": "base64"}
    if inputs.model != DEFAULT_MODEL:
        doc["model"] = inputs.model
    if OPTION_DIMENSIONS in inputs.options:
        doc["dimensions"] = int(inputs.options[OPTION_DIMENSIONS])
    return EncodedRequest("POST", "/v1/embeddings", _dump(doc), dict(_JSON))


def _row(value: Any, index: int) -> np.ndarray:
    if isinstance(value, str):
        raw = base64.b64decode(value)
        if len(raw) % 4:
            raise MmshipError(f"malformed /v1/embeddings response: embedding {index} is {len(raw)} bytes, not float32s")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    try:
        return np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise MmshipError(f"malformed /v1/embeddings response: embedding {index} is not a list of numbers") from None


def decode_embeddings_response(body: bytes, headers: Mapping[str, str] | None = None) -> ItemEmbeddings:
    """The vectors (in index order) and token count of an embeddings response; OpenAI's
    error object raises :class:`MmshipError` with its message."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MmshipError("malformed /v1/embeddings response: not JSON", hint="check that the URL is an OpenAI-compatible server") from None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        raise MmshipError(str(doc["error"].get("message")))
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise MmshipError("malformed /v1/embeddings response: no data list", hint="check that the URL is an OpenAI-compatible server")
    entries = sorted(doc["data"], key=lambda e: int(e.get("index", 0)) if isinstance(e, dict) else 0)
    rows = [_row(e.get("embedding") if isinstance(e, dict) else None, i) for i, e in enumerate(entries)]
    if len({len(r) for r in rows}) > 1:
        raise MmshipError("malformed /v1/embeddings response: the vectors differ in length")
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    matrix = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return ItemEmbeddings(model=str(doc.get("model", "")), embeddings=matrix, prompt_tokens=int(usage.get("prompt_tokens") or 0))


# --- the codec --------------------------------------------------------------------


class OpenAIEmbeddingsCodec(Codec[ItemEmbeddings]):
    """``POST /v1/embeddings``, ``GET /v1/models``, OpenAI's error object under ``/v1/``."""

    name = "openai"
    description = "POST /v1/embeddings, GET /v1/models: OpenAI-compatible embeddings of texts and images"
    operation: ClassVar[Operation] = "embed_items"
    routes = ("/v1/embeddings",)
    models_route = "/v1/models"
    error_prefix = "/v1/"
    openapi: ClassVar[Mapping[str, Any]] = openapi_fields(EmbeddingsRequest, EmbeddingsResponse)

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """See :func:`encode_embeddings_request`."""
        return encode_embeddings_request(inputs)

    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> ItemEmbeddings:
        """See :func:`decode_embeddings_response`."""
        return decode_embeddings_response(body, headers)

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """See :func:`decode_embeddings_request`."""
        return decode_embeddings_request(body, headers)

    def encode_response(self, answer: ItemEmbeddings, request: DecodedRequest) -> EncodedResponse:
        """Vectors as floats or base64, as the request asked."""
        return encode_embeddings_response(answer, str(request.inputs.options.get(OPTION_ENCODING, "float")))

    def encode_models(self, cards: Sequence[ModelCard], one: bool = False) -> EncodedResponse:
        """``{"object": "list", "data": [model objects]}``, or one model object."""
        doc = model_object(cards[0]) if one else {"object": "list", "data": [model_object(c) for c in cards]}
        return EncodedResponse(_dump(doc), dict(_JSON))

    def encode_error(self, status: int, message: str, error: BaseException | None) -> EncodedResponse:
        """See :func:`openai_error`."""
        return EncodedResponse(_dump(openai_error(status, message, error)), dict(_JSON), status=status)


@hookimpl
def mmship_register_codecs(register: Any) -> None:
    """Register the OpenAI-compatible embeddings codec."""
    register(OpenAIEmbeddingsCodec)
