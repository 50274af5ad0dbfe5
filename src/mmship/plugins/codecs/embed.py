"""The people-facing JSON routes ``/embed`` and ``/classify`` (plugin ``codec-embed``).

``POST /embed`` ``{"images": [base64 | data URI], "texts": [...], "normalize": true}``
-> ``{"model", "image_embeds", "text_embeds", "dim", "truncated"}``;
``POST /classify`` ``{"image": base64 | data URI, "labels": [...], "template": "a photo of a {}"}``
-> ``{"model", "labels", "probs", "top"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmship import hookimpl
from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import EncodedRequest, PayloadInputs
from mmship.payload.binary import parse_json
from mmship.payload.images import check_encoded_image, encode_image_text

DEFAULT_TEMPLATE = "a photo of a {}"
_JSON = {"content-type": "application/json"}


@dataclass
class EmbedResult:
    """Embeddings from ``/embed``: one row per image / text, in the order sent."""

    model: str
    dim: int
    image_embeds: np.ndarray | None = None
    text_embeds: np.ndarray | None = None
    embeds: dict[str, np.ndarray] = field(default_factory=dict)
    truncated: list[bool] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every embedding by output name (``image_embeds``, ``text_embeds``, others)."""
        out = dict(self.embeds)
        if self.image_embeds is not None:
            out["image_embeds"] = self.image_embeds
        if self.text_embeds is not None:
            out["text_embeds"] = self.text_embeds
        return out


@dataclass
class ClassifyResult:
    """Zero-shot classification of one image: a probability per label."""

    model: str
    labels: list[str]
    probs: list[float]
    top: str
    truncated: list[bool] = field(default_factory=list)
    #: ``softmax`` (probs sum to 1) or ``sigmoid`` (one per label); ``None`` from servers that do not say.
    scoring: str | None = None

    def ranked(self) -> list[tuple[str, float]]:
        """``(label, probability)`` pairs, most likely first."""
        return sorted(zip(self.labels, self.probs), key=lambda pair: -pair[1])


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
        "normalize": bool(inputs.options.get("normalize", True)),
    }
    return EncodedRequest("POST", "/embed", json.dumps(doc).encode("utf-8"), dict(_JSON))


def encode_classify_request(image: bytes, labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> EncodedRequest:
    """``POST /classify`` for one encoded image and its candidate labels."""
    labels = [str(label) for label in labels]
    if not labels:
        raise InputSpecError("classification needs at least one label", hint="pass labels, e.g. cat,dog,car")
    if "{}" not in template:
        raise InputSpecError(f"template {template!r} has no '{{}}' for the label", hint="write e.g. 'a photo of a {}'")
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


@hookimpl
def mmship_encode_payload(inputs: PayloadInputs, protocol: str) -> EncodedRequest | None:
    """Encode protocol ``embed`` (``POST /embed``) and ``classify`` (``POST /classify``:
    the first image, with ``options["labels"]`` and ``options["template"]``)."""
    if protocol == "embed":
        return encode_embed_request(inputs)
    if protocol == "classify":
        if len(inputs.images) != 1:
            raise InputSpecError(f"/classify takes exactly one image, got {len(inputs.images)}", hint="send one image per call")
        return encode_classify_request(
            inputs.images[0], inputs.options.get("labels") or [], inputs.options.get("template", DEFAULT_TEMPLATE)
        )
    return None
