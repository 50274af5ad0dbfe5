"""The zero-shot operations: ``classify`` (images against labels, one template or a prompt
ensemble) and ``rank`` (candidate texts for an image, or candidate images for a text).

Both score under the model's own scoring (:class:`~mmship.scoring.Scorer`: softmax for
CLIP and FLAVA, sigmoid for SigLIP) from the image embeddings and the label embeddings of
:class:`~mmship.serving.label_embeddings.LabelEmbedder` (cached: a label asked before
is neither tokenized nor run through the text graph). The model is resolved by name in
:class:`~mmship.serving.models.ServedModels`. Per-request limits are checked before
anything runs: items (images + prompts: labels x templates), characters of all prompts,
and the pixels of all images (by the image preprocessor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import numpy as np

from mmship.core.errors import InputSpecError
from mmship.core.payload import (
    DEFAULT_TEMPLATE,
    OPTION_LABELS,
    OPTION_QUERY,
    OPTION_TEMPLATE,
    OPTION_TEMPLATES,
    OPTION_TOP_K,
    ClassifyResult,
    DecodedRequest,
    ImageScores,
    PayloadInputs,
    RankedCandidate,
    RankResult,
    check_template,
    check_templates,
)
from mmship.scoring import cosine_matrix
from mmship.serving.label_embeddings import VERBATIM, LabelEmbedder
from mmship.serving.models import ServedModels
from mmship.serving.service import ModelService
from mmship.serving.settings import ServerSettings

A = TypeVar("A")
B = TypeVar("B")


def check_items(count: int, settings: ServerSettings, what: str = "items") -> None:
    """Refuse a request of more than ``settings.max_items_per_request`` items."""
    if count > settings.max_items_per_request:
        raise InputSpecError(
            f"the request has {count} {what}; this server takes at most {settings.max_items_per_request} per request",
            hint="split the request, or use fewer labels or templates"
            if "prompts" in what else "split the request",
        )


def request_templates(options: dict[str, object]) -> tuple[str, ...]:
    """The request's templates: ``templates`` (an ensemble) or one ``template``, checked."""
    if options.get(OPTION_TEMPLATES) is not None:
        if options.get(OPTION_TEMPLATE) is not None:
            raise InputSpecError(
                "the request has both 'template' and 'templates'", hint="send one template, or the list of templates alone"
            )
        return check_templates(options[OPTION_TEMPLATES])
    template = options.get(OPTION_TEMPLATE)
    return (check_template(DEFAULT_TEMPLATE if template is None else template),)


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results, run concurrently; when one fails, its error is raised after the other
    has finished (no work of the request outlives its answer, no error goes unread)."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0], results[1]  # type: ignore[return-value]


class ZeroShot:
    """``classify`` and ``rank`` for the served models."""

    def __init__(self, models: ServedModels, settings: ServerSettings, embedder: LabelEmbedder) -> None:
        self.models = models
        self.settings = settings
        self.embedder = embedder

    def _scoring_service(self, inputs: PayloadInputs, route: str) -> ModelService:
        service = self.models.resolve(inputs.model)
        if not service.scorer.applies(service.engine.output_specs):
            raise InputSpecError(
                f"model {service.name!r} has no image-text score (scoring: {service.scorer.kind}) to {route} with",
                hint="use /embed or /v2 infer for this model",
            )
        return service

    async def _image_embeds(self, service: ModelService, images: list[bytes]) -> np.ndarray:
        result = await service.infer(PayloadInputs(images=images))
        return result.outputs[service.scorer.spec.image_embeds]

    async def classify(self, decoded: DecodedRequest) -> ClassifyResult:
        """Each image's probability per label under the model's scoring (softmax over the
        labels, or one sigmoid per label)."""
        inputs = decoded.inputs
        labels = [str(label) for label in inputs.options.get(OPTION_LABELS) or []]
        if not inputs.images or not labels:
            raise InputSpecError(
                f"classification takes at least one image and one label, got {len(inputs.images)} and {len(labels)}",
                hint="send an image (or a list of images) and its candidate labels",
            )
        templates = request_templates(inputs.options)
        check_items(len(inputs.images) + len(labels) * len(templates), self.settings, "items (images + labels x templates prompts)")
        service = self._scoring_service(inputs, "classify")
        service.check_text_chars(
            len(labels) * sum(len(t) - len(VERBATIM[0]) for t in templates) + len(templates) * sum(len(x) for x in labels),
            "label prompts",
        )
        image_embeds, label_matrix = await both(
            self._image_embeds(service, inputs.images), self.embedder.embed(service, labels, templates)
        )
        probs = service.scorer.probabilities(service.scorer.logits(image_embeds, label_matrix.vectors))
        results = [ImageScores(probs=[float(p) for p in row], top=labels[int(np.argmax(row))]) for row in probs]
        return ClassifyResult(
            model=service.name, labels=labels, probs=results[0].probs, top=results[0].top,
            truncated=label_matrix.truncated, scoring=service.scorer.kind, results=results,
        )

    async def rank(self, decoded: DecodedRequest) -> RankResult:
        """The candidates (texts for a query image, images for a query text), best first,
        with their cosine and their probability under the model's scoring."""
        inputs = decoded.inputs
        query = inputs.options.get(OPTION_QUERY)
        queries, candidates = (inputs.images, inputs.texts) if query == "image" else (inputs.texts, inputs.images)
        if query not in ("image", "text") or len(queries) != 1 or not candidates:
            raise InputSpecError(
                f"ranking takes one query (an image or a text) and at least one candidate of the other kind; got query "
                f"{query!r} with {len(queries)} query item(s) and {len(candidates)} candidate(s)",
                hint='send {"query": {"image": ...}, "candidates": {"texts": [...]}} or '
                '{"query": {"text": ...}, "candidates": {"images": [...]}}',
            )
        top_k = inputs.options.get(OPTION_TOP_K)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputSpecError(f"top_k must be a whole number of at least 1, got {top_k!r}", hint="send e.g. \"top_k\": 5, or leave it out for all")
        check_items(len(inputs.images) + len(inputs.texts), self.settings)
        service = self._scoring_service(inputs, "rank")
        service.check_text_chars(sum(len(t) for t in inputs.texts))
        image_embeds, texts = await both(
            self._image_embeds(service, inputs.images), self.embedder.embed(service, list(inputs.texts), VERBATIM)
        )
        scorer = service.scorer
        cosines = cosine_matrix(image_embeds, texts.vectors)
        logits = scorer.logits(image_embeds, texts.vectors)
        if query == "text":  # one row: the query text against every image (softmax over the images)
            cosines, logits = cosines.T, logits.T
        probs = scorer.probabilities(logits)
        order = np.argsort(-cosines[0], kind="stable")[: top_k or len(candidates)]
        results = [
            RankedCandidate(
                index=int(i), cosine=float(cosines[0, i]), probability=float(probs[0, i]),
                text=inputs.texts[i] if query == "image" else None,
            )
            for i in order
        ]
        return RankResult(
            model=service.name, query=str(query), scoring=scorer.kind, results=results,
            candidates=len(candidates), truncated=texts.truncated,
        )
