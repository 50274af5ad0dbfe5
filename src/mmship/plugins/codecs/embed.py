"""The people-facing JSON routes ``/embed`` and ``/classify`` (plugin ``codec-embed``).

``POST /embed`` ``{"images": [base64 | data URI], "texts": [...], "normalize": true}``
-> ``{"model", "dim", "image_embeds", "text_embeds", "embeds", "truncated"}``;
``POST /classify`` ``{"image": base64 | data URI, "labels": [...], "template": "a photo of a {}"}``
-> ``{"model", "labels", "probs", "top", "truncated"}``.

Two codecs, :class:`EmbedCodec` (operation ``embed``) and :class:`ClassifyCodec`
(operation ``classify``), each with the client side (``encode_*_request``,
``decode_*_response``) and the server side (``decode_*_request``, ``encode_*_response``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from mmship import hookimpl
from mmship.core.codec import Codec, Operation
from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import (
    DEFAULT_TEMPLATE,
    OPTION_LABELS,
    OPTION_NORMALIZE,
    OPTION_TEMPLATE,
    ClassifyResult,
    DecodedRequest,
    EmbedResult,
    EncodedRequest,
    EncodedResponse,
    PayloadInputs,
    check_template,
)
from mmship.payload.binary import parse_json
from mmship.payload.images import (
    check_encoded_image,
    decode_image_text,
    encode_image_text,
)
from mmship.plugins.codecs.embed_schemas import (
    ClassifyRequest,
    ClassifyResponse,
    EmbedRequest,
    EmbedResponse,
    openapi_fields,
    read_json_body,
)

__all__ = [
    "DEFAULT_TEMPLATE", "ClassifyCodec", "ClassifyResult", "EmbedCodec", "EmbedResult",
    "decode_classify_request", "decode_classify_response", "decode_embed_request", "decode_embed_response",
    "encode_classify_request", "encode_classify_response", "encode_embed_request", "encode_embed_response",
]

_JSON = {"content-type": "application/json"}


# --- client side ------------------------------------------------------------------


def encode_embed_request(inputs: PayloadInputs) -> EncodedRequest:
    """``POST /embed`` for ``inputs.images`` (base64) and ``inputs.texts``;
    ``inputs.options["normalize"]`` (default true)."""
    if inputs.tensors:
        raise InputSpecError(
            f"/embed takes images and texts, not raw tensors ({', '.join(inputs.tensors)})",
            hint="send raw tensors with the v2 or v2-binary protocol",
        )
    if not inputs.images and not inputs.texts:
        raise InputSpecError("there is nothing to embed", hint="give at least one image or text")
    doc = {
        "images": [encode_image_text(check_encoded_image(bytes(b), f"image {i}")) for i, b in enumerate(inputs.images)],
        "texts": list(inputs.texts),
        "normalize": bool(inputs.options.get(OPTION_NORMALIZE, True)),
    }
    return EncodedRequest("POST", "/embed", json.dumps(doc).encode("utf-8"), dict(_JSON))


def encode_classify_request(image: bytes, labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> EncodedRequest:
    """``POST /classify`` for one encoded image and its candidate labels."""
    labels = [str(label) for label in labels]
    if not labels:
        raise InputSpecError("classification needs at least one label", hint="pass labels, e.g. cat,dog,car")
    check_template(template)
    doc = {"image": encode_image_text(check_encoded_image(bytes(image), "image")), "labels": labels, "template": template}
    return EncodedRequest("POST", "/classify", json.dumps(doc).encode("utf-8"), dict(_JSON))


def _document(body: bytes, route: str) -> dict[str, Any]:
    try:
        doc = parse_json(body, "response")
    except InputSpecError as exc:
        raise MmshipError(f"malformed {route} response: {exc.message}", hint="check that the URL is an mmship server") from None
    if isinstance(doc, dict) and "error" in doc:
        raise MmshipError(str(doc["error"]))
    if not isinstance(doc, dict):
        raise MmshipError(f"malformed {route} response: a JSON {type(doc).__name__}", hint="check that the URL is an mmship server")
    return doc


def _matrix(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise MmshipError(f"malformed /embed response: {name} is not a matrix of numbers") from None
    return array.reshape(len(value), -1) if array.ndim != 2 else array


def decode_embed_response(body: bytes, headers: Mapping[str, str] | None = None) -> EmbedResult:
    """The embeddings of a ``/embed`` response; raises :class:`MmshipError` with the
    server's message for an ``{"error": ...}`` body."""
    doc = _document(body, "/embed")
    image = _matrix(doc.get("image_embeds"), "image_embeds")
    text = _matrix(doc.get("text_embeds"), "text_embeds")
    others = {k: m for k, v in (doc.get("embeds") or {}).items() if (m := _matrix(v, k)) is not None}
    dim = doc.get("dim")
    if not isinstance(dim, int):
        first = next((a for a in (image, text, *others.values()) if a is not None), None)
        dim = int(first.shape[1]) if first is not None and first.ndim == 2 else 0
    return EmbedResult(
        model=str(doc.get("model", "")), dim=dim, image_embeds=image, text_embeds=text, embeds=others,
        truncated=[bool(t) for t in doc.get("truncated") or []],
    )


def decode_classify_response(body: bytes, headers: Mapping[str, str] | None = None) -> ClassifyResult:
    """The probabilities of a ``/classify`` response."""
    doc = _document(body, "/classify")
    labels = [str(label) for label in doc.get("labels") or []]
    probs = [float(p) for p in doc.get("probs") or []]
    if len(labels) != len(probs):
        raise MmshipError(f"malformed /classify response: {len(labels)} labels but {len(probs)} probabilities")
    top = doc.get("top") or (labels[int(np.argmax(probs))] if probs else "")
    return ClassifyResult(
        model=str(doc.get("model", "")), labels=labels, probs=probs, top=str(top),
        truncated=[bool(t) for t in doc.get("truncated") or []], scoring=doc.get("scoring"),
    )


# --- server side ------------------------------------------------------------------


def _json_response(doc: BaseModel) -> EncodedResponse:
    """``doc`` as FastAPI writes a response model (compact, UTF-8, no NaN)."""
    try:
        body = json.dumps(doc.model_dump(mode="json"), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise InputSpecError(
            "the answer holds NaN or infinite values, which JSON cannot carry",
            hint="check the inputs; use the v2-binary protocol to receive such values",
        ) from None
    return EncodedResponse(body.encode("utf-8"), dict(_JSON))


def _listed(array: np.ndarray | None) -> list[list[float]] | None:
    return None if array is None else array.astype(float).tolist()


def decode_embed_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """A ``POST /embed`` body: images decoded to their files' bytes, texts, and
    ``options["normalize"]``."""
    request = read_json_body(body, headers, EmbedRequest)
    images = [decode_image_text(value, f"images[{i}]") for i, value in enumerate(request.images)]
    inputs = PayloadInputs(images=images, texts=list(request.texts), options={OPTION_NORMALIZE: request.normalize})
    return DecodedRequest(inputs=inputs)


def encode_embed_response(answer: EmbedResult) -> EncodedResponse:
    """The ``/embed`` response body for ``answer``."""
    return _json_response(EmbedResponse(
        model=answer.model, dim=answer.dim, image_embeds=_listed(answer.image_embeds),
        text_embeds=_listed(answer.text_embeds), embeds={k: _listed(v) for k, v in answer.embeds.items()},
        truncated=answer.truncated,
    ))


def decode_classify_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """A ``POST /classify`` body: the image's bytes, ``options["labels"]`` and
    ``options["template"]``."""
    request = read_json_body(body, headers, ClassifyRequest)
    image = decode_image_text(request.image, "image")
    options = {OPTION_LABELS: list(request.labels), OPTION_TEMPLATE: request.template}
    return DecodedRequest(inputs=PayloadInputs(images=[image], options=options))


def encode_classify_response(answer: ClassifyResult) -> EncodedResponse:
    """The ``/classify`` response body for ``answer``."""
    return _json_response(ClassifyResponse(
        model=answer.model, labels=answer.labels, probs=answer.probs, top=answer.top, scoring=answer.scoring,
        truncated=answer.truncated,
    ))


# --- codecs -----------------------------------------------------------------------


class EmbedCodec(Codec[EmbedResult]):
    """``POST /embed``: embeddings of images and texts, plain JSON."""

    name = "embed"
    description = "POST /embed: embeddings of images and texts, plain JSON"
    operation: ClassVar[Operation] = "embed"
    routes = ("/embed",)
    openapi: ClassVar[Mapping[str, Any]] = openapi_fields(EmbedRequest, EmbedResponse)

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """See :func:`encode_embed_request`."""
        return encode_embed_request(inputs)

    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> EmbedResult:
        """See :func:`decode_embed_response`."""
        return decode_embed_response(body, headers)

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """See :func:`decode_embed_request`."""
        return decode_embed_request(body, headers)

    def encode_response(self, answer: EmbedResult, request: DecodedRequest) -> EncodedResponse:
        """See :func:`encode_embed_response`."""
        return encode_embed_response(answer)


class ClassifyCodec(Codec[ClassifyResult]):
    """``POST /classify``: zero-shot classification of one image, plain JSON."""

    name = "classify"
    description = "POST /classify: zero-shot classification of one image, plain JSON"
    operation: ClassVar[Operation] = "classify"
    routes = ("/classify",)
    openapi: ClassVar[Mapping[str, Any]] = openapi_fields(ClassifyRequest, ClassifyResponse)

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """The first and only image of ``inputs``, with ``options["labels"]`` and
        ``options["template"]`` (see :func:`encode_classify_request`)."""
        if len(inputs.images) != 1:
            raise InputSpecError(f"/classify takes exactly one image, got {len(inputs.images)}", hint="send one image per call")
        return encode_classify_request(
            inputs.images[0], inputs.options.get(OPTION_LABELS) or [], inputs.options.get(OPTION_TEMPLATE, DEFAULT_TEMPLATE)
        )

    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> ClassifyResult:
        """See :func:`decode_classify_response`."""
        return decode_classify_response(body, headers)

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """See :func:`decode_classify_request`."""
        return decode_classify_request(body, headers)

    def encode_response(self, answer: ClassifyResult, request: DecodedRequest) -> EncodedResponse:
        """See :func:`encode_classify_response`."""
        return encode_classify_response(answer)


@hookimpl
def mmship_register_codecs(register: Any) -> None:
    """Register the ``/embed`` and ``/classify`` codecs."""
    register(EmbedCodec)
    register(ClassifyCodec)
