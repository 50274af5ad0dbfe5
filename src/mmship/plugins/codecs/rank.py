"""``POST /rank`` (plugin ``codec-rank``): rank candidate texts for a query image, or
candidate images for a query text, under the model's scoring, top-k.

``{"query": {"image": base64 | data URI} | {"text": "..."}, "candidates": {"texts": [...]} |
{"images": [...]}, "top_k": 5, "model": "clip"}`` -> ``{"model", "query", "scoring",
"candidates", "results": [{"index", "cosine", "probability", "text"?}, ...], "truncated"}``,
best first. ``probability`` is the model's own: a softmax over all the candidates (CLIP,
FLAVA), or each candidate's sigmoid (SigLIP). Both sides of the wire are here
(:class:`RankCodec`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmship import hookimpl
from mmship.core.codec import Codec, Operation
from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import (
    OPTION_QUERY,
    OPTION_TOP_K,
    DecodedRequest,
    EncodedRequest,
    EncodedResponse,
    PayloadInputs,
    RankedCandidate,
    RankResult,
)
from mmship.payload.binary import parse_json
from mmship.payload.images import check_encoded_image, decode_image_text, encode_image_text
from mmship.plugins.codecs.embed_schemas import openapi_fields, read_json_body

_JSON = {"content-type": "application/json"}
_SHAPES = '{"query": {"image": ...}, "candidates": {"texts": [...]}} or {"query": {"text": ...}, "candidates": {"images": [...]}}'


class RankQuery(BaseModel):
    """The query: one image or one text."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="base64 or data-URI encoded JPEG/PNG/WebP")
    text: str | None = None


class RankCandidates(BaseModel):
    """What to rank: texts (for an image query) or images (for a text query)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] | None = Field(None, min_length=1)
    images: list[str] | None = Field(None, min_length=1, description="base64 or data-URI encoded JPEG/PNG/WebP")


class RankRequest(BaseModel):
    """Rank candidates of one modality for a query of the other."""

    model_config = ConfigDict(extra="forbid")
    query: RankQuery
    candidates: RankCandidates
    top_k: int | None = Field(None, ge=1, description="how many of the best candidates to answer (default: all)")
    model: str | None = Field(None, description="the served model to use (default: the only one)")


class RankedItem(BaseModel):
    """One ranked candidate."""

    index: int = Field(description="its position in candidates")
    cosine: float = Field(description="cosine similarity of its embedding with the query's")
    probability: float = Field(description="softmax over all candidates, or its own sigmoid (the response's scoring)")
    text: str | None = Field(None, description="the candidate text (text candidates only)")


class RankResponse(BaseModel):
    """The best candidates, best first."""

    model: str
    query: Literal["image", "text"]
    scoring: Literal["softmax", "sigmoid"]
    candidates: int = Field(description="how many candidates were ranked")
    results: list[RankedItem]
    truncated: list[bool] = Field(default_factory=list, description="per text sent: cut to the model's context")


# --- client side ------------------------------------------------------------------


def encode_rank_request(inputs: PayloadInputs) -> EncodedRequest:
    """``POST /rank`` for ``inputs``: ``options["query"]`` names which of ``images`` /
    ``texts`` holds the one query; the other list holds the candidates."""
    query = inputs.options.get(OPTION_QUERY)
    queries, candidates = (inputs.images, inputs.texts) if query == "image" else (inputs.texts, inputs.images)
    if query not in ("image", "text") or len(queries) != 1 or not candidates:
        raise InputSpecError(
            f"ranking takes one query image and candidate texts, or one query text and candidate images; got query "
            f"{query!r}, {len(inputs.images)} image(s) and {len(inputs.texts)} text(s)",
            hint="client.rank(image=..., texts=[...]) or client.rank(text=..., images=[...])",
        )
    if query == "image":
        doc: dict[str, Any] = {
            "query": {"image": encode_image_text(check_encoded_image(bytes(inputs.images[0]), "query image"))},
            "candidates": {"texts": [str(t) for t in inputs.texts]},
        }
    else:
        doc = {
            "query": {"text": str(inputs.texts[0])},
            "candidates": {"images": [encode_image_text(check_encoded_image(bytes(b), f"image {i}")) for i, b in enumerate(inputs.images)]},
        }
    if inputs.options.get(OPTION_TOP_K) is not None:
        doc["top_k"] = int(inputs.options[OPTION_TOP_K])
    if inputs.model != PayloadInputs().model:
        doc["model"] = inputs.model
    return EncodedRequest("POST", "/rank", json.dumps(doc).encode("utf-8"), dict(_JSON))


def decode_rank_response(body: bytes, headers: Mapping[str, str] | None = None) -> RankResult:
    """The ranking in a ``/rank`` response."""
    try:
        doc = parse_json(body, "response")
    except InputSpecError as exc:
        raise MmshipError(f"malformed /rank response: {exc.message}", hint="check that the URL is an mmship server") from None
    if isinstance(doc, dict) and "error" in doc:
        raise MmshipError(str(doc["error"]))
    try:
        answer = RankResponse.model_validate(doc)
    except ValueError as exc:
        raise MmshipError(f"malformed /rank response: {exc}", hint="check that the URL is an mmship server") from None
    return RankResult(
        model=answer.model, query=answer.query, scoring=answer.scoring, candidates=answer.candidates,
        results=[RankedCandidate(index=r.index, cosine=r.cosine, probability=r.probability, text=r.text) for r in answer.results],
        truncated=list(answer.truncated),
    )


# --- server side ------------------------------------------------------------------


def decode_rank_request(body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
    """A ``POST /rank`` body: the query and candidates as images and texts, with
    ``options["query"]`` and ``options["top_k"]``; ``model`` names the model."""
    request = read_json_body(body, headers, RankRequest)
    query, candidates = request.query, request.candidates
    if (query.image is None) == (query.text is None):
        raise InputSpecError(
            f"query takes one image or one text, got {'both' if query.image is not None else 'neither'}", hint=f"send {_SHAPES}"
        )
    if (candidates.texts is None) == (candidates.images is None):
        raise InputSpecError(
            f"candidates takes texts or images, got {'both' if candidates.texts is not None else 'neither'}", hint=f"send {_SHAPES}"
        )
    kind = "image" if query.image is not None else "text"
    if (kind == "image") != (candidates.texts is not None):
        other = "texts" if kind == "image" else "images"
        raise InputSpecError(
            f"a query {kind} ranks candidate {other}, got candidate {'images' if kind == 'image' else 'texts'}",
            hint=f"send {_SHAPES}; for {kind}-to-{kind} similarity use /embed and compare the embeddings",
        )
    if kind == "image":
        inputs = PayloadInputs(images=[decode_image_text(query.image, "query.image")], texts=list(candidates.texts or []))
    else:
        images = [decode_image_text(value, f"candidates.images[{i}]") for i, value in enumerate(candidates.images or [])]
        inputs = PayloadInputs(images=images, texts=[str(query.text)])
    inputs.options = {OPTION_QUERY: kind, OPTION_TOP_K: request.top_k}
    if request.model is not None:
        inputs.model = request.model
    return DecodedRequest(inputs=inputs)


def encode_rank_response(answer: RankResult) -> EncodedResponse:
    """The ``/rank`` response body for ``answer`` (``text`` only on text candidates)."""
    doc = RankResponse(
        model=answer.model, query=answer.query, scoring=answer.scoring, candidates=answer.candidates,
        results=[RankedItem(index=r.index, cosine=r.cosine, probability=r.probability, text=r.text) for r in answer.results],
        truncated=answer.truncated,
    ).model_dump(mode="json")
    for item in doc["results"]:
        if item["text"] is None:
            del item["text"]
    try:
        body = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise InputSpecError(
            "the answer holds NaN or infinite values, which JSON cannot carry", hint="check the inputs"
        ) from None
    return EncodedResponse(body.encode("utf-8"), dict(_JSON))


class RankCodec(Codec[RankResult]):
    """``POST /rank``: candidate texts for an image, or candidate images for a text, top-k."""

    name = "rank"
    description = "POST /rank: rank candidate texts for an image or candidate images for a text, top-k"
    operation: ClassVar[Operation] = "rank"
    routes = ("/rank",)
    openapi: ClassVar[Mapping[str, Any]] = openapi_fields(RankRequest, RankResponse)

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """See :func:`encode_rank_request`."""
        return encode_rank_request(inputs)

    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> RankResult:
        """See :func:`decode_rank_response`."""
        return decode_rank_response(body, headers)

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """See :func:`decode_rank_request`."""
        return decode_rank_request(body, headers)

    def encode_response(self, answer: RankResult, request: DecodedRequest) -> EncodedResponse:
        """See :func:`encode_rank_response`."""
        return encode_rank_response(answer)


@hookimpl
def mmship_register_codecs(register: Any) -> None:
    """Register the ``/rank`` codec."""
    register(RankCodec)
