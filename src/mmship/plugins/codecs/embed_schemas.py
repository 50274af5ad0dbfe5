"""Request and response bodies of the people-facing routes (``/embed``, ``/classify``, ``/rank``),
and reading a JSON body the way FastAPI reads one (same rules, same 400 messages)."""

from __future__ import annotations

import email.message
import json
from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from mmship.core.errors import InputSpecError
from mmship.payload.binary import refuse_json_constant

M = TypeVar("M", bound=BaseModel)


class EmbedRequest(BaseModel):
    """Embed images and/or texts."""

    model_config = ConfigDict(extra="forbid")
    images: list[str] = Field(default_factory=list, description="base64 or data-URI encoded JPEG/PNG/WebP")
    texts: list[str] = Field(default_factory=list)
    normalize: bool = True
    model: str | None = Field(None, description="the served model to use (default: the first served; see GET /v1/models)")


class EmbedResponse(BaseModel):
    model: str
    dim: int
    image_embeds: list[list[float]] | None = None
    text_embeds: list[list[float]] | None = None
    embeds: dict[str, list[list[float]]] = Field(default_factory=dict, description="other outputs (fusion, FLAVA)")
    truncated: list[bool] = Field(default_factory=list)


class ClassifyRequest(BaseModel):
    """Zero-shot classification of one image (``image``) or several (``images``) against
    labels, each put into one template or into several (a prompt ensemble)."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="one image: base64 or data-URI encoded JPEG/PNG/WebP")
    images: list[str] | None = Field(None, min_length=1, description="several images (instead of image): one result each")
    labels: list[str] = Field(min_length=1)
    template: str | None = Field(None, description='exactly one "{}" where the label goes (default "a photo of a {}")')
    templates: list[str] | None = Field(
        None, min_length=1,
        description="a prompt ensemble (instead of template): each label's prompt embeddings averaged, as in CLIP's paper",
    )
    model: str | None = Field(None, description="the served model to use (default: the first served; see GET /v1/models)")


class ClassifyResponse(BaseModel):
    """Each label's probability for the image, under the model's scoring."""

    model: str
    labels: list[str]
    probs: list[float]
    top: str
    scoring: Literal["softmax", "sigmoid"] = Field(
        description="softmax: probs sum to 1 over the labels (CLIP); sigmoid: each label's own probability (SigLIP)"
    )
    truncated: list[bool] = Field(default_factory=list, description="per label: a prompt was cut to the model's context")


class ImageResult(BaseModel):
    """One image's probability per label (the labels are the response's)."""

    probs: list[float]
    top: str


class ClassifyImagesResponse(BaseModel):
    """The answer to ``images``: one result per image, in the order sent."""

    model: str
    labels: list[str]
    scoring: Literal["softmax", "sigmoid"]
    results: list[ImageResult]
    truncated: list[bool] = Field(default_factory=list, description="per label: a prompt was cut to the model's context")


class ClassifyAnswer(RootModel[ClassifyResponse | ClassifyImagesResponse]):
    """``image`` is answered with :class:`ClassifyResponse`, ``images`` with :class:`ClassifyImagesResponse`."""


def openapi_fields(request: type[BaseModel], response: type[BaseModel]) -> dict[str, object]:
    """OpenAPI request body and 200 response of a route taking and giving these bodies
    (nested models written in place: a ``#/$defs/...`` reference would point nowhere in
    the OpenAPI document)."""
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": self_contained_schema(request)}}},
        "responses": {"200": {"description": "Successful Response", "content": {"application/json": {"schema": self_contained_schema(response)}}}},
    }


def self_contained_schema(model: type[BaseModel]) -> dict[str, object]:
    """``model``'s JSON schema with every ``$ref`` to its ``$defs`` replaced by the definition."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
                return {**inline(definitions[ref.removeprefix("#/$defs/")]), **rest}
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)  # type: ignore[return-value]


def _invalid(parts: list[str]) -> InputSpecError:
    return InputSpecError("invalid request body: " + "; ".join(parts), hint="see /docs for the request schema")


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def read_json_body(body: bytes, headers: Mapping[str, str], model: type[M]) -> M:
    """``body`` validated as ``model``. As FastAPI does for a JSON body: an empty body is
    missing; the body is parsed as JSON only under an ``application/json`` (or ``+json``)
    content type, otherwise it is refused as not an object.

    :raises InputSpecError: ``invalid request body: <where>: <what>`` and the fix.
    """
    if not body:
        raise _invalid(["body: Field required"])
    data: object = body
    if _is_json({k.lower(): v for k, v in headers.items()}.get("content-type")):
        try:
            data = json.loads(body, parse_constant=refuse_json_constant)
        except RecursionError:
            raise _invalid(["body: JSON nested too deeply to read"]) from None
        except json.JSONDecodeError as exc:
            raise _invalid([f"{exc.pos}: JSON decode error"]) from None
        except UnicodeDecodeError as exc:
            raise _invalid([f"{exc.start}: the body is not UTF-8 JSON ({exc.reason})"]) from None
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{where or 'body'}: {error.get('msg')}")
        raise _invalid(parts) from None
