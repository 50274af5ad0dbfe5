"""Label embeddings for zero-shot scoring: each label put into one template, or into
several (a prompt ensemble, as in CLIP's paper), embedded by the model's text tower and
reduced to one unit-length vector, through the :class:`~mmship.serving.label_cache.LabelEmbeddingCache`.

For an ensemble, each prompt's embedding is scaled to unit length, the label's prompts
are averaged, and the mean is scaled to unit length again (CLIP's ``zeroshot_classifier``).
One template is the ensemble of one: the label's prompt embedding, unit length.

Cached and computed labels go through the same steps and the same stored float32
vector, so an answer from the cache is identical to the answer that filled it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from mmship.core.errors import InputSpecError
from mmship.core.payload import TEMPLATE_SLOT, PayloadInputs
from mmship.scoring import unit_rows
from mmship.serving.label_cache import LabelEmbedding, LabelEmbeddingCache, LabelKey, TextTower
from mmship.serving.service import ModelService

#: The template of a text used as it is (``/rank``'s texts): the prompt is the text.
VERBATIM = (TEMPLATE_SLOT,)


@dataclass
class LabelMatrix:
    """One unit-length float32 row per label, in the order asked, and whether each
    label's prompts were cut to the model's context."""

    vectors: np.ndarray
    truncated: list[bool]


def text_tower(service: ModelService) -> TextTower:
    """The :class:`TextTower` of ``service``: its name and the graph(s) producing its text
    embeddings, as loaded (precision, runtime, accelerator, file sha256)."""
    engine = service.engine
    manifest = engine.bundle.manifest
    output = service.scorer.spec.text_embeds
    graphs = [g for g in engine.graphs.values() if any(o.name == output for o in g.outputs)]
    files = [g.file.file if g.file is not None else manifest.graph(g.spec.name, g.precision).file for g in graphs]
    return TextTower(
        model=service.name, precision="+".join(sorted({g.precision for g in graphs})),
        runtime="+".join(sorted({g.runtime for g in graphs})), accelerator=engine.accelerator,
        digest="+".join(manifest.files.get(f, "") for f in sorted(files)),
    )


class LabelEmbedder:
    """Label embeddings of any served model, cached across requests and models (keys
    carry the model's :class:`TextTower`)."""

    def __init__(self, cache: LabelEmbeddingCache) -> None:
        self.cache = cache
        self._towers: dict[ModelService, TextTower] = {}

    def tower(self, service: ModelService) -> TextTower:
        """``service``'s text tower (worked out once per service)."""
        if service not in self._towers:
            self._towers[service] = text_tower(service)
        return self._towers[service]

    async def embed(self, service: ModelService, labels: list[str], templates: tuple[str, ...]) -> LabelMatrix:
        """Each label's embedding under ``templates`` (already checked), from the cache
        or computed in one call of ``service``'s text graph for all the labels missing."""
        tower = self.tower(service)
        found: dict[str, LabelEmbedding] = {}
        missing: dict[str, None] = {}  # ordered, unique
        for label in labels:
            if label in found or label in missing:
                continue
            held = self.cache.get(LabelKey(tower, templates, label))
            if held is None:
                missing[label] = None
            else:
                found[label] = held
        if missing:
            found.update(await self._compute(service, tower, list(missing), templates))
        vectors = np.stack([found[label].vector for label in labels]) if labels else np.zeros((0, 0), np.float32)
        return LabelMatrix(vectors=vectors, truncated=[found[label].truncated for label in labels])

    async def _compute(
        self, service: ModelService, tower: TextTower, labels: list[str], templates: tuple[str, ...]
    ) -> dict[str, LabelEmbedding]:
        prompts = [template.replace(TEMPLATE_SLOT, label) for label in labels for template in templates]
        # At most one batch of prompts per call: the batcher runs each call's rows together,
        # so a thousand prompts in one call would hold the text graph for one huge run.
        size = max(1, service.max_batch_size)
        chunks = _chunks(prompts, size)
        answers = await asyncio.gather(*(service.infer(PayloadInputs(texts=chunk)) for chunk in chunks), return_exceptions=True)
        failed = next((a for a in answers if isinstance(a, BaseException)), None)
        if failed is not None:  # raised once every chunk is done: none outlives the request
            raise failed
        results = [a for a in answers if not isinstance(a, BaseException)]
        output = service.scorer.spec.text_embeds
        if any(output not in r.outputs for r in results):
            raise InputSpecError(
                f"model {service.name!r} gave no {output!r} for the label prompts", hint="use /embed or /v2 infer for this model"
            )
        embeds = np.concatenate([r.outputs[output] for r in results], axis=0)
        per_prompt = unit_rows(embeds).reshape(len(labels), len(templates), -1)
        vectors = unit_rows(per_prompt.mean(axis=1)).astype(np.float32)
        truncated = [t for r, chunk in zip(results, chunks, strict=True) for t in (r.truncated or [False] * len(chunk))]
        cut = np.asarray(truncated, dtype=bool).reshape(len(labels), len(templates))
        computed = {}
        for index, label in enumerate(labels):
            row = vectors[index].copy()  # its own memory: evicting one label frees it
            row.setflags(write=False)
            embedding = LabelEmbedding(row, bool(cut[index].any()))
            self.cache.put(LabelKey(tower, templates, label), embedding)
            computed[label] = embedding
        return computed


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
