"""Payload types: what travels between a codec and the rest of mmship, on both sides.

Requests: the client builds :class:`PayloadInputs`, a codec encodes them into an
:class:`EncodedRequest`; on the server a codec decodes the body back into a
:class:`DecodedRequest`. Responses: the server builds the answer of its operation
(:class:`InferOutputs`, :class:`EmbedResult`, :class:`ClassifyResult`), a codec encodes
it into an :class:`EncodedResponse`; on the client the codec decodes the body back into
the same answer type. Images always travel as encoded bytes (JPEG/PNG/WebP), never as
raw pixels without a shape. The codec contract is :class:`mmship.core.codec.Codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mmship.core.errors import InputSpecError

#: ``PayloadInputs.options`` keys every codec reads the same way:
#: ``outputs`` (infer: output names to ask for), ``normalize`` (embed: unit-length
#: embeddings, default true), ``labels``, ``template`` or ``templates`` (classify: one
#: template, or a prompt ensemble) and ``image_list`` (classify: the images came as a
#: list, answer one result per image), ``query`` and ``top_k`` (rank).
OPTION_OUTPUTS = "outputs"
OPTION_NORMALIZE = "normalize"
OPTION_LABELS = "labels"
OPTION_TEMPLATE = "template"
OPTION_TEMPLATES = "templates"
OPTION_IMAGE_LIST = "image_list"
#: ``rank``: which of ``images`` / ``texts`` holds the query (``image`` or ``text``); the other holds the candidates.
OPTION_QUERY = "query"
#: ``rank``: how many of the best candidates to answer (``None``: all).
OPTION_TOP_K = "top_k"
DEFAULT_TEMPLATE = "a photo of a {}"
#: Where a ``/classify`` template takes the label.
TEMPLATE_SLOT = "{}"


def check_template(template: str) -> str:
    """``template`` when it holds exactly one ``{}`` and no other brace; raises otherwise.

    Templates are never Python format strings: the label goes in by :meth:`str.replace`,
    so no format spec, field name or attribute lookup is ever evaluated.
    """
    if not isinstance(template, str):
        raise InputSpecError(f"the template is a {type(template).__name__}, not a string", hint="write e.g. 'a photo of a {}'")
    slots = template.count(TEMPLATE_SLOT)
    if slots == 0:
        raise InputSpecError(f"template {template[:200]!r} has no '{{}}' for the label", hint="write e.g. 'a photo of a {}'")
    others = template.replace(TEMPLATE_SLOT, "").count("{") + template.replace(TEMPLATE_SLOT, "").count("}")
    if slots > 1 or others:
        raise InputSpecError(
            f"template {template[:200]!r} must hold exactly one '{{}}' and no other brace "
            f"(it has {slots} '{{}}' and {others} other braces)",
            hint="keep one '{}' for the label and remove the other braces",
        )
    return template


def fill_template(template: str, labels: list[str]) -> list[str]:
    """Each label put into ``template`` at its one ``{}`` (see :func:`check_template`)."""
    check_template(template)
    return [template.replace(TEMPLATE_SLOT, label) for label in labels]


def check_templates(templates: Any) -> tuple[str, ...]:
    """A prompt ensemble: a non-empty list of templates, each passing
    :func:`check_template` (the error names the one at fault)."""
    if isinstance(templates, str) or not isinstance(templates, (list, tuple)) or not templates:
        raise InputSpecError(
            f"templates must be a non-empty list of templates, got {type(templates).__name__}"
            + (f" of {len(templates)}" if isinstance(templates, (list, tuple)) else ""),
            hint='write e.g. ["a photo of a {}", "a drawing of a {}"], or send one "template"',
        )
    for index, template in enumerate(templates):
        try:
            check_template(template)
        except InputSpecError as exc:
            raise InputSpecError(f"templates[{index}]: {exc.message}", hint=exc.hint) from None
    return tuple(templates)


#: ``embed_items``: truncate each embedding to this many dimensions (Matryoshka models only).
OPTION_DIMENSIONS = "dimensions"

#: What one item of an ``embed_items`` request is: a text, the token ids of a text (the
#: model's own tokenizer's), an encoded image, or the URL of an image the server fetches.
ItemKind = Literal["text", "tokens", "image", "image_url"]


@dataclass
class EmbedItem:
    """One input of the ``embed_items`` operation, embedded on its own."""

    kind: ItemKind
    #: ``str`` for text and image_url, ``list[int]`` for tokens, ``bytes`` for image.
    value: str | list[int] | bytes

    @classmethod
    def text(cls, value: str) -> EmbedItem:
        """A text item."""
        return cls("text", value)

    @classmethod
    def image(cls, value: bytes) -> EmbedItem:
        """An encoded image item (JPEG/PNG/WebP bytes)."""
        return cls("image", value)


@dataclass
class PayloadInputs:
    """High-level inputs: encoded images, texts, and raw tensors by input name."""

    images: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tensors: dict[str, Any] = field(default_factory=dict)
    model: str = "default"
    options: dict[str, Any] = field(default_factory=dict)
    #: ``embed_items``: the inputs in order, texts and images mixed (one embedding each).
    items: list[EmbedItem] = field(default_factory=list)


@dataclass
class EncodedRequest:
    """An HTTP request ready to send: path relative to the base URL, body and headers."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class DecodedRequest:
    """A server-side request after decoding: the same shape as :class:`PayloadInputs`
    plus the names of the outputs the client asked for and their encoding."""

    inputs: PayloadInputs
    requested_outputs: list[str] = field(default_factory=list)
    binary_outputs: bool = False
    request_id: str | None = None


@dataclass
class EncodedResponse:
    """An HTTP response ready to send: body and headers (lower-case names, with
    ``content-type``) and the status."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


@dataclass
class InferOutputs:
    """The answer of the ``infer`` operation: the model's outputs by name."""

    model: str
    outputs: dict[str, np.ndarray]
    truncated: list[bool] = field(default_factory=list)
    model_version: str = "1"
    request_id: str | None = None


@dataclass
class EmbedResult:
    """The answer of the ``embed`` operation: one row per image / text, in the order sent."""

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
class ImageScores:
    """One image's probability per label (the labels are its :class:`ClassifyResult`'s)."""

    probs: list[float]
    top: str


@dataclass
class ClassifyResult:
    """The answer of the ``classify`` operation: a probability per label for each image.
    ``probs`` and ``top`` are the first image's; :attr:`results` holds every image's."""

    model: str
    labels: list[str]
    probs: list[float]
    top: str
    #: Per label: whether one of its prompts was longer than the model's context and cut.
    truncated: list[bool] = field(default_factory=list)
    #: ``softmax`` (probs sum to 1) or ``sigmoid`` (one per label); ``None`` from servers that do not say.
    scoring: str | None = None
    #: Every image's scores, in the order sent (built by hand without it: only ``probs``/``top``).
    results: list[ImageScores] = field(default_factory=list)

    def ranked(self, image: int = 0) -> list[tuple[str, float]]:
        """``(label, probability)`` pairs of image ``image``, most likely first."""
        probs = self.results[image].probs if self.results else self.probs
        return sorted(zip(self.labels, probs), key=lambda pair: -pair[1])


@dataclass
class RankedCandidate:
    """One candidate of a ``rank`` answer."""

    #: Its position among the candidates sent.
    index: int
    #: Cosine similarity of its embedding with the query's.
    cosine: float
    #: Its probability under the model's scoring: softmax over all candidates, or its own sigmoid.
    probability: float
    #: The candidate text (text candidates only).
    text: str | None = None


@dataclass
class RankResult:
    """The answer of the ``rank`` operation: the best candidates for the query, best first."""

    model: str
    #: ``image`` (candidates are texts) or ``text`` (candidates are images).
    query: str
    #: ``softmax`` or ``sigmoid``: what :attr:`RankedCandidate.probability` is.
    scoring: str
    #: At most ``top_k`` candidates, best first.
    results: list[RankedCandidate]
    #: How many candidates were ranked.
    candidates: int
    #: Per text sent (the query text, or each candidate text): whether it was cut to the model's context.
    truncated: list[bool] = field(default_factory=list)


@dataclass
class ItemEmbeddings:
    """The answer of the ``embed_items`` operation: one unit-length row per item, in the
    order sent, and how many tokens the texts took."""

    model: str
    #: ``[n_items, dim]`` float32, unit rows (re-normalised after a Matryoshka truncation).
    embeddings: np.ndarray
    #: The kind of each row's item (``text``, ``tokens``, ``image``, ``image_url``).
    kinds: list[str] = field(default_factory=list)
    #: Tokens the model read for the texts and token arrays, special tokens included,
    #: padding not (images count none).
    prompt_tokens: int = 0
    truncated: list[bool] = field(default_factory=list)


@dataclass
class ModelCard:
    """What a protocol's model list says about one served model."""

    name: str
    #: Unix time the bundle was built.
    created: int
    owned_by: str = "mmship"
    adapter: str = ""
    precision: str = ""
    #: ``image`` and/or ``text``: what the model embeds.
    modalities: list[str] = field(default_factory=list)
    #: Embedding size (``None`` when the model has no per-item embedding).
    dimensions: int | None = None
    #: Sizes ``dimensions`` may truncate to (Matryoshka models); empty: none.
    matryoshka_dimensions: list[int] = field(default_factory=list)
    #: Tokens per text, special tokens included (``None`` without a tokenizer).
    max_input_tokens: int | None = None
