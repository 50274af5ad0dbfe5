"""The ``embed_items`` operation: texts, token ids, images and image URLs, one vector each.

Steps, each refusing a bad request before the next costs anything: resolve the model by
name; check the item count and ``dimensions``; fetch the image URLs (only when the operator
allows it, see :mod:`mmship.serving.url_fetch`); pack token-id arrays as the tokenizer
would (:mod:`mmship.preprocess.token_ids`); run texts and images through the model service
together (the same preprocessing, limits and batchers as every other route) and token
arrays beside them; put the rows back in the order sent, unit length, cut to
``dimensions`` and re-normalised where the model allows it; count the tokens read.
"""

from __future__ import annotations

import asyncio

import numpy as np

from mmship.core.errors import RequestFieldError
from mmship.core.payload import OPTION_DIMENSIONS, DecodedRequest, EmbedItem, ItemEmbeddings, PayloadInputs
from mmship.preprocess.token_ids import TokenIdPacker
from mmship.scoring import unit_rows
from mmship.serving.models import ServedModels, embedding_outputs
from mmship.serving.service import InferResult, ModelService
from mmship.serving.settings import ServerSettings
from mmship.serving.url_fetch import UrlFetcher

_MODALITY = {"text": "text", "tokens": "text", "image": "image", "image_url": "image"}


class ItemEmbedder:
    """Answers ``embed_items`` requests for the served models."""

    def __init__(self, models: ServedModels, settings: ServerSettings) -> None:
        self.models = models
        self.settings = settings
        self.fetcher = UrlFetcher(settings.url_fetch)
        self._packers: dict[str, TokenIdPacker] = {}

    def close(self) -> None:
        """Stop the fetch threads."""
        self.fetcher.close()

    def _packer(self, service: ModelService) -> TokenIdPacker:
        if service.tokenizer is None:
            raise RequestFieldError(f"model {service.name!r} takes no texts, so no token ids either", hint="send images", field="input")
        if service.name not in self._packers:
            self._packers[service.name] = TokenIdPacker(service.engine.bundle.path("processor"), service.tokenizer)
        return self._packers[service.name]

    def _dimensions(self, service: ModelService, asked: object) -> int | None:
        """The size to cut to, or ``None``; refused unless the model was trained for it."""
        if asked is None:
            return None
        card = self.models.card(service.name)
        size = int(asked)  # type: ignore[call-overload]
        if size == card.dimensions:
            return None
        allowed = card.matryoshka_dimensions
        if not allowed:
            raise RequestFieldError(
                f"model {service.name!r} gives {card.dimensions}-dimension embeddings and was not trained to be cut "
                f"(no Matryoshka sizes declared): its first {size} dimensions would not be a meaningful embedding",
                hint=f"leave dimensions out (you get {card.dimensions}), or serve a model whose config.json declares "
                "matryoshka_dimensions", field="dimensions",
            )
        if size not in allowed:
            raise RequestFieldError(
                f"dimensions {size} is not one of model {service.name!r}'s Matryoshka sizes {allowed}",
                hint=f"use one of {', '.join(map(str, allowed))}", field="dimensions",
            )
        return size

    def _check(self, service: ModelService, items: list[EmbedItem]) -> dict[str, str]:
        if not items:
            raise RequestFieldError("there is nothing to embed", hint="send at least one text or image", field="input")
        if len(items) > self.settings.max_items_per_request:
            raise RequestFieldError(
                f"the request has {len(items)} items; this server takes at most {self.settings.max_items_per_request} per request",
                hint="split the request", field="input",
            )
        outputs = embedding_outputs(service)
        for modality in sorted({_MODALITY[item.kind] for item in items}):
            if modality not in outputs:
                raise RequestFieldError(
                    f"model {service.name!r} gives no {modality} embedding (it embeds: {', '.join(outputs) or 'nothing per item'})",
                    hint="send only " + (" and ".join(f"{m}s" for m in outputs) if outputs else "requests to /v2 infer"),
                    field="input",
                )
        return outputs

    async def _images(self, items: list[EmbedItem]) -> list[bytes]:
        """The encoded images in item order, URLs fetched."""
        urls = [str(item.value) for item in items if item.kind == "image_url"]
        fetched = iter(await self.fetcher.fetch_all(urls, self.settings.max_body_bytes) if urls else [])
        return [next(fetched) if item.kind == "image_url" else bytes(item.value) for item in items  # type: ignore[arg-type]
                if item.kind in ("image", "image_url")]

    async def __call__(self, decoded: DecodedRequest) -> ItemEmbeddings:
        """Embed ``decoded.inputs.items`` with the model ``decoded.inputs.model``."""
        service = self.models.resolve(decoded.inputs.model)
        items = decoded.inputs.items
        outputs = self._check(service, items)
        size = self._dimensions(service, decoded.inputs.options.get(OPTION_DIMENSIONS))
        token_rows = [list(item.value) for item in items if item.kind == "tokens"]  # type: ignore[arg-type]
        packed = await asyncio.to_thread(self._packer(service).pack, token_rows) if token_rows else None
        texts = [str(item.value) for item in items if item.kind == "text"]
        images = await self._images(items)
        jobs = []
        if texts or images:
            jobs.append(service.infer(PayloadInputs(images=images, texts=texts)))
        if packed is not None:
            feeds = {s.name: packed.arrays[s.name] for s in service.engine.input_specs.values()
                     if s.modality == "text" and s.name in packed.arrays}
            jobs.append(service.infer(PayloadInputs(tensors=feeds)))
        results: list[InferResult] = list(await asyncio.gather(*jobs))
        rows = self._rows(items, outputs, results, texts or images, packed is not None)
        if size is not None:
            rows = unit_rows(rows[:, :size])
        token_counts = (results[0].text_tokens if texts else []) + (
            [int(n) for n in packed.attention_mask.sum(axis=1)] if packed is not None else []
        )
        truncated = (results[0].truncated if texts else []) + (packed.truncated if packed is not None else [])
        return ItemEmbeddings(
            model=service.name, embeddings=rows, kinds=[item.kind for item in items],
            prompt_tokens=sum(token_counts), truncated=truncated,
        )

    @staticmethod
    def _rows(
        items: list[EmbedItem], outputs: dict[str, str], results: list[InferResult], plain: object, tokens: bool
    ) -> np.ndarray:
        """One unit-length float32 row per item, in the order sent."""
        plain_out = results[0].outputs if plain else {}
        token_out = results[-1].outputs if tokens else {}
        sources = {
            "text": iter(unit_rows(plain_out[outputs["text"]])) if "text" in outputs and outputs["text"] in plain_out else iter(()),
            "tokens": iter(unit_rows(token_out[outputs["text"]])) if "text" in outputs and outputs["text"] in token_out else iter(()),
            "image": iter(unit_rows(plain_out[outputs["image"]])) if "image" in outputs and outputs["image"] in plain_out else iter(()),
        }
        rows = [next(sources["image" if item.kind == "image_url" else item.kind]) for item in items]
        sizes = sorted({len(row) for row in rows})
        if len(sizes) > 1:
            raise RequestFieldError(
                f"this model's text and image embeddings differ in size ({sizes[0]} and {sizes[1]}), so they cannot share a list",
                hint="send texts and images in separate requests", field="input",
            )
        return np.stack(rows).astype(np.float32)
