"""Label embeddings through the shared cache, in-process with real model services: a hit
neither tokenizes nor runs the text graph, and one cache serving several models (two
precisions of the same model name, another model) never answers one with another's
embedding or template."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mmship.core.bundle import Bundle
from mmship.serving.engine import Engine
from mmship.serving.label_cache import LabelEmbeddingCache
from mmship.serving.label_embeddings import LabelEmbedder, text_tower
from mmship.serving.metrics import ServerMetrics
from mmship.serving.service import ModelService
from mmship.serving.settings import ServerSettings

LABELS = ["cat", "dog"]
TEMPLATE_SETS = [("a photo of a {}",), ("a drawing of a {}",), ("a photo of a {}", "a drawing of a {}")]


class CountingTokenizer:
    """The service's tokenizer, recording the texts it is asked to tokenize."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return self.inner(texts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def service(bundle, precision: str) -> ModelService:
    engine = Engine(Bundle.load(bundle), precision=precision, threads=1)
    return ModelService(engine, ServerSettings(max_delay_ms=1), ServerMetrics())


def run_with(services: list[ModelService], work) -> None:
    async def main() -> None:
        for s in services:
            await s.start()
        try:
            await work()
        finally:
            for s in services:
                await s.stop()

    asyncio.run(main())


def text_batches(s: ModelService) -> float:
    return s.metrics.registry.get_sample_value("mmship_batch_size_count", {"graph": "text", "model": ""}) or 0.0


def test_a_hit_neither_tokenizes_nor_runs_the_text_graph(tiny_clip_bundle):
    clip = service(tiny_clip_bundle, "fp32")
    counter = CountingTokenizer(clip.tokenizer)
    clip.tokenizer = counter
    embedder = LabelEmbedder(LabelEmbeddingCache(100, 10**6))

    async def work() -> None:
        first = await embedder.embed(clip, LABELS, TEMPLATE_SETS[2])
        assert counter.calls == [["a photo of a cat", "a drawing of a cat", "a photo of a dog", "a drawing of a dog"]]
        batches = text_batches(clip)
        again = await embedder.embed(clip, ["dog", "cat", "dog"], TEMPLATE_SETS[2])
        assert len(counter.calls) == 1 and text_batches(clip) == batches, "all hits: no tokenizer, no text graph"
        assert np.array_equal(again.vectors, first.vectors[[1, 0, 1]])
        await embedder.embed(clip, ["cat", "bird", "bird"], TEMPLATE_SETS[2])
        assert counter.calls[-1] == ["a photo of a bird", "a drawing of a bird"], "only the missing label, once"

    run_with([clip], work)


def test_one_cache_never_answers_a_model_precision_or_template_with_anothers(tiny_clip_bundle, tiny_siglip_bundle):
    clip32, clip8, siglip = service(tiny_clip_bundle, "fp32"), service(tiny_clip_bundle, "int8"), service(tiny_siglip_bundle, "fp32")
    assert clip32.name == clip8.name, "the same model name: only the precision tells them apart"
    assert text_tower(clip32) != text_tower(clip8) and text_tower(clip32) != text_tower(siglip)
    shared = LabelEmbedder(LabelEmbeddingCache(100, 10**6))

    async def work() -> None:
        computed = {}
        for _ in range(2):  # the second round answers every label from the shared cache
            for s in (clip32, clip8, siglip):
                for templates in TEMPLATE_SETS:
                    got = await shared.embed(s, LABELS, templates)
                    alone = await LabelEmbedder(LabelEmbeddingCache(0, 0)).embed(s, LABELS, templates)
                    np.testing.assert_array_equal(got.vectors, alone.vectors)
                    computed[(id(s), templates)] = got.vectors
        assert len(shared.cache) == 3 * len(TEMPLATE_SETS) * len(LABELS)
        # the embeddings really differ, so an answer from the wrong entry could not pass
        assert not np.allclose(computed[(id(clip32), TEMPLATE_SETS[0])], computed[(id(clip8), TEMPLATE_SETS[0])], atol=1e-4)
        assert not np.allclose(computed[(id(clip32), TEMPLATE_SETS[0])], computed[(id(clip32), TEMPLATE_SETS[1])], atol=1e-4)
        assert not np.allclose(computed[(id(clip32), TEMPLATE_SETS[0])], computed[(id(clip32), TEMPLATE_SETS[2])], atol=1e-4)
        for vectors in computed.values():
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
            assert vectors.dtype == np.float32

    run_with([clip32, clip8, siglip], work)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_text_tower_names_the_graph_file_as_hashed_in_the_manifest(tiny_clip_bundle, precision):
    clip = service(tiny_clip_bundle, precision)
    manifest = clip.engine.bundle.manifest
    tower = text_tower(clip)
    assert (tower.model, tower.precision, tower.runtime, tower.accelerator) == (manifest.name, precision, "onnxruntime", "cpu")
    assert tower.digest == manifest.files[manifest.graph("text", precision).file] and len(tower.digest) == 64
