"""The people-facing JSON routes ``/embed`` and ``/classify`` (plugin ``codec-embed``).

``POST /embed`` ``{"images": [base64 | data URI], "texts": [...], "normalize": true}``
-> ``{"model", "dim", "image_embeds", "text_embeds", "embeds", "truncated"}``;
``POST /classify`` ``{"image": base64 | data URI, "labels": [...], "template": "a photo of a {}"}``
-> ``{"model", "labels", "probs", "top", "scoring", "truncated"}``; with ``"images": [...]``
instead of ``image``, ``{"model", "labels", "scoring", "results": [{"probs", "top"}, ...],
"truncated"}``; ``"templates": [...]`` instead of ``template`` is a prompt ensemble.

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
    OPTION_IMAGE_LIST,
    OPTION_LABELS,
    OPTION_NORMALIZE,
    OPTION_TEMPLATE,
    OPTION_TEMPLATES,
    ClassifyResult,
    DecodedRequest,
    EmbedResult,
    EncodedRequest,
    EncodedResponse,
    ImageScores,
    PayloadInputs,
    check_template,
    check_templates,
)
from mmship.payload.binary import parse_json
from mmship.payload.json_out import dump_json
from mmship.payload.images import (
    check_encoded_image,
    decode_image_text,
    encode_image_text,
)
from mmship.plugins.codecs.embed_schemas import (
    ClassifyAnswer,
    ClassifyImagesResponse,
    ClassifyRequest,
    ClassifyResponse,
    EmbedRequest,
    EmbedResponse,
    ImageResult,
    openapi_fields,
    read_json_body,
)

__all__ = [
    "DEFAULT_TEMPLATE", "ClassifyCodec", "ClassifyResult", "EmbedCodec", "EmbedResult",
    "decode_classify_request", "decode_classify_response", "decode_embed_request", "decode_embed_response",
    "encode_classify_request", "encode_classify_response", "encode_embed_request", "encode_embed_response",
]

_JSON = {"content-type": "application/json"}
#: The model name of a request that names none (the server answers with its first model).
UNNAMED = PayloadInputs().model


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
    if inputs.model != UNNAMED:
        doc["model"] = inputs.model
    return EncodedRequest("POST", "/embed", json.dumps(doc).encode("utf-8"), dict(_JSON))


def encode_classify_request(
    image: bytes | Sequence[bytes], labels: Sequence[str], template: str = DEFAULT_TEMPLATE,
    *, templates: Sequence[str] | None = None, model: str | None = None,
) -> EncodedRequest:
    """``POST /classify`` for one encoded image (``image``), or a list of them (``images``:
    one result each), and the candidate labels; ``templates`` (a prompt ensemble) replaces
    ``template``; ``model`` names the served model (default: the server's first)."""
    labels = [str(label) for label in labels]
    if not labels:
        raise InputSpecError("classification needs at least one label", hint="pass labels, e.g. cat,dog,car")
    doc: dict[str, Any] = {}
    if isinstance(image, (bytes, bytearray, memoryview)):
        doc["image"] = encode_image_text(check_encoded_image(bytes(image), "image"))
    else:
        if not image:
            raise InputSpecError("classification needs at least one image", hint="pass an image or a list of images")
        doc["images"] = [encode_image_text(check_encoded_image(bytes(b), f"image {i}")) for i, b in enumerate(image)]
    doc["labels"] = labels
    if templates is not None:
        doc["templates"] = list(check_templates(list(templates)))
    else:
        doc["template"] = check_template(template)
    if model is not None and model != UNNAMED:
        doc["model"] = model
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
    """The probabilities of a ``/classify`` response (one image, or ``results`` per image)."""
    doc = _document(body, "/classify")
    labels = [str(label) for label in doc.get("labels") or []]
    if isinstance(doc.get("results"), list):
        results = [_image_scores(item, labels, index) for index, item in enumerate(doc["results"])]
    else:
        results = [_image_scores(doc, labels, None)]
    if not results:
        raise MmshipError("malformed /classify response: no results")
    return ClassifyResult(
        model=str(doc.get("model", "")), labels=labels, probs=results[0].probs, top=results[0].top,
        truncated=[bool(t) for t in doc.get("truncated") or []], scoring=doc.get("scoring"), results=results,
    )


def _image_scores(item: Any, labels: list[str], index: int | None) -> ImageScores:
    where = "" if index is None else f" results[{index}]"
    if not isinstance(item, dict):
        raise MmshipError(f"malformed /classify response:{where} is a JSON {type(item).__name__}")
    try:
        probs = [float(p) for p in item.get("probs") or []]
    except (TypeError, ValueError):
        raise MmshipError(f"malformed /classify response:{where} probs are not numbers") from None
    if len(labels) != len(probs):
        raise MmshipError(f"malformed /classify response:{where} {len(labels)} labels but {len(probs)} probabilities")
    top = item.get("top") or (labels[int(np.argmax(probs))] if probs else "")
    return ImageScores(probs=probs, top=str(top))


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


def decode_embed_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """A ``POST /embed`` body: images decoded to their files' bytes, texts, and
    ``options["normalize"]``."""
    request = read_json_body(body, headers, EmbedRequest)
    images = [decode_image_text(value, f"images[{i}]") for i, value in enumerate(request.images)]
    inputs = PayloadInputs(images=images, texts=list(request.texts), options={OPTION_NORMALIZE: request.normalize})
    if request.model is not None:
        inputs.model = request.model
    return DecodedRequest(inputs=inputs)


def _float64(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else np.ascontiguousarray(array, dtype=np.float64)


def encode_embed_response(answer: EmbedResult) -> EncodedResponse:
    """The ``/embed`` response body for ``answer`` (:class:`EmbedResponse`'s fields, in its
    order; written by :func:`~mmship.payload.json_out.dump_json` without building the model)."""
    doc = {
        "model": answer.model, "dim": int(answer.dim), "image_embeds": _float64(answer.image_embeds),
        "text_embeds": _float64(answer.text_embeds), "embeds": {k: _float64(v) for k, v in answer.embeds.items()},
        "truncated": [bool(t) for t in answer.truncated],
    }
    try:
        body = dump_json(doc)
    except ValueError:
        raise InputSpecError(
            "the answer holds NaN or infinite values, which JSON cannot carry",
            hint="check the inputs; use the v2-binary protocol to receive such values",
        ) from None
    return EncodedResponse(body, dict(_JSON))


def decode_classify_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """A ``POST /classify`` body: the images' bytes (``image``, or ``images`` with
    ``options["image_list"]``), ``options["labels"]`` and ``options["template"]`` or
    ``options["templates"]``."""
    request = read_json_body(body, headers, ClassifyRequest)
    if (request.image is None) == (request.images is None):
        got = "both" if request.image is not None else "neither"
        raise InputSpecError(
            f"/classify takes either 'image' (one image) or 'images' (a list of images), got {got}",
            hint='send "image": "<base64>" for one image, or "images": ["<base64>", ...] for one result per image',
        )
    if request.images is not None:
        images = [decode_image_text(value, f"images[{i}]") for i, value in enumerate(request.images)]
    else:
        images = [decode_image_text(request.image, "image")]
    options = {
        OPTION_LABELS: list(request.labels), OPTION_TEMPLATE: request.template, OPTION_TEMPLATES: request.templates,
        OPTION_IMAGE_LIST: request.images is not None,
    }
    inputs = PayloadInputs(images=images, options=options)
    if request.model is not None:
        inputs.model = request.model
    return DecodedRequest(inputs=inputs)


def encode_classify_response(answer: ClassifyResult, request: DecodedRequest | None = None) -> EncodedResponse:
    """The ``/classify`` response body for ``answer``: one image's shape, or one result per
    image when the request sent ``images``."""
    if request is not None and request.inputs.options.get(OPTION_IMAGE_LIST):
        results = answer.results or [ImageScores(answer.probs, answer.top)]
        return _json_response(ClassifyImagesResponse(
            model=answer.model, labels=answer.labels, scoring=answer.scoring,
            results=[ImageResult(probs=r.probs, top=r.top) for r in results], truncated=answer.truncated,
        ))
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
    """``POST /classify``: zero-shot classification of images, plain JSON."""

    name = "classify"
    description = "POST /classify: zero-shot classification of images (prompt ensembles too), plain JSON"
    operation: ClassVar[Operation] = "classify"
    routes = ("/classify",)
    openapi: ClassVar[Mapping[str, Any]] = openapi_fields(ClassifyRequest, ClassifyAnswer)

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """The images of ``inputs`` (as ``image`` when there is one and
        ``options["image_list"]`` is not set), with ``options["labels"]`` and
        ``options["template"]`` or ``options["templates"]`` (see :func:`encode_classify_request`)."""
        options = inputs.options
        if not inputs.images:
            raise InputSpecError("/classify needs at least one image, got none", hint="send an image")
        images: bytes | list[bytes] = (
            list(inputs.images) if options.get(OPTION_IMAGE_LIST) or len(inputs.images) != 1 else inputs.images[0]
        )
        return encode_classify_request(
            images, options.get(OPTION_LABELS) or [],
            DEFAULT_TEMPLATE if options.get(OPTION_TEMPLATE) is None else options[OPTION_TEMPLATE],
            templates=options.get(OPTION_TEMPLATES), model=inputs.model,
        )

    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> ClassifyResult:
        """See :func:`decode_classify_response`."""
        return decode_classify_response(body, headers)

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """See :func:`decode_classify_request`."""
        return decode_classify_request(body, headers)

    def encode_response(self, answer: ClassifyResult, request: DecodedRequest) -> EncodedResponse:
        """See :func:`encode_classify_response`."""
        return encode_classify_response(answer, request)


@hookimpl
def mmship_register_codecs(register: Any) -> None:
    """Register the ``/embed`` and ``/classify`` codecs."""
    register(EmbedCodec)
    register(ClassifyCodec)
