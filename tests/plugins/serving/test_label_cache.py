"""The label-embedding cache on its own: keys that keep models, precisions and templates
apart, the two bounds (entries, bytes), least-recently-used eviction and its counters."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mmship.serving.label_cache import (
    ENTRY_OVERHEAD_BYTES,
    LabelEmbedding,
    LabelEmbeddingCache,
    LabelKey,
    TextTower,
)

CLIP = TextTower("clip", "fp32", "onnxruntime", "cpu", "aa" * 32)
DIM = 16


def vector(seed: int) -> LabelEmbedding:
    values = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return LabelEmbedding(values / np.linalg.norm(values), truncated=False)


def key(label: str, templates: tuple[str, ...] = ("a photo of a {}",), tower: TextTower = CLIP) -> LabelKey:
    return LabelKey(tower, templates, label)


def sample(registry: CollectorRegistry, name: str, model: str | None = None) -> float:
    value = registry.get_sample_value(name, {"model": model} if model is not None else {})
    return 0.0 if value is None else value


def entry_bytes(k: LabelKey) -> int:
    strings = [k.label, *k.templates, k.tower.model, k.tower.precision, k.tower.runtime, k.tower.accelerator, k.tower.digest]
    return DIM * 4 + sum(len(s.encode()) for s in strings) + ENTRY_OVERHEAD_BYTES


def test_a_key_differing_in_any_part_is_another_entry():
    cache = LabelEmbeddingCache(100, 10**6)
    base = key("cat")
    cache.put(base, vector(0))
    others = [
        key("cat", tower=TextTower("siglip", "fp32", "onnxruntime", "cpu", "aa" * 32)),  # another model
        key("cat", tower=TextTower("clip", "int8", "onnxruntime", "cpu", "aa" * 32)),  # another precision
        key("cat", tower=TextTower("clip", "fp32", "other-runtime", "cpu", "aa" * 32)),
        key("cat", tower=TextTower("clip", "fp32", "onnxruntime", "cuda", "aa" * 32)),
        key("cat", tower=TextTower("clip", "fp32", "onnxruntime", "cpu", "bb" * 32)),  # another graph file
        key("cat", ("a drawing of a {}",)),  # another template
        key("cat", ("a photo of a {}", "a drawing of a {}")),  # an ensemble holding the template
        key("Cat"), key("cat "),  # labels compare exactly
    ]
    for other in others:
        assert cache.get(other) is None, other
    assert cache.get(base) is not None


def test_keys_are_tuples_so_no_two_prompts_can_be_confused_by_a_separator():
    cache = LabelEmbeddingCache(100, 10**6)
    cache.put(key("b", ("a {}|",)), vector(1))
    assert cache.get(key("|b", ("a {}",))) is None
    assert cache.get(key("b", ("a {}", "|"))) is None


def test_hits_misses_and_the_held_vector_is_read_only():
    registry = CollectorRegistry()
    cache = LabelEmbeddingCache(10, 10**6, registry)
    assert cache.get(key("cat")) is None
    original = vector(2)
    assert cache.put(key("cat"), original)
    held = cache.get(key("cat"))
    assert held is not None and np.array_equal(held.vector, original.vector)
    with pytest.raises(ValueError):
        held.vector[0] = 1.0  # nobody can change what the next request gets
    original.vector[0] = 7.0  # nor change it through the array that was put
    assert cache.get(key("cat")).vector[0] != 7.0
    assert sample(registry, "mmship_label_cache_hits_total", "clip") == 2
    assert sample(registry, "mmship_label_cache_misses_total", "clip") == 1


def test_the_entry_bound_evicts_the_least_recently_used():
    registry = CollectorRegistry()
    cache = LabelEmbeddingCache(3, 10**6, registry)
    for i, label in enumerate(["a", "b", "c"]):
        cache.put(key(label), vector(i))
    assert cache.get(key("a")) is not None  # a is now the most recently used
    cache.put(key("d"), vector(3))
    assert len(cache) == 3
    assert cache.get(key("b")) is None, "b was the least recently used"
    assert all(cache.get(key(label)) is not None for label in ("a", "c", "d"))
    assert sample(registry, "mmship_label_cache_evictions_total", "clip") == 1
    assert sample(registry, "mmship_label_cache_entries") == 3


def test_the_byte_bound_counts_vectors_and_key_strings():
    registry = CollectorRegistry()
    one = entry_bytes(key("x" * 10))
    cache = LabelEmbeddingCache(1000, 3 * one, registry)
    for i in range(3):
        cache.put(key(str(i) * 10), vector(i))
    assert len(cache) == 3 and cache.nbytes == 3 * one
    assert sample(registry, "mmship_label_cache_bytes") == 3 * one
    cache.put(key("L" * 500), vector(9))  # a long label counts its bytes: two entries must go
    assert cache.nbytes <= 3 * one
    assert len(cache) == 2 and cache.get(key("0" * 10)) is None and cache.get(key("1" * 10)) is None
    assert sample(registry, "mmship_label_cache_evictions_total", "clip") == 2


def test_an_entry_larger_than_the_byte_bound_is_never_held():
    cache = LabelEmbeddingCache(10, 2000)
    cache.put(key("small"), vector(0))
    assert not cache.put(key("x" * 5000), vector(1))
    assert len(cache) == 1 and cache.get(key("small")) is not None, "nothing was evicted for it"


def test_putting_a_key_again_replaces_it_without_growing():
    cache = LabelEmbeddingCache(10, 10**6)
    cache.put(key("cat"), vector(0))
    size = cache.nbytes
    cache.put(key("cat"), vector(1))
    assert len(cache) == 1 and cache.nbytes == size
    assert np.array_equal(cache.get(key("cat")).vector, vector(1).vector)


@pytest.mark.parametrize(("entries", "size"), [(0, 10**6), (10, 0)])
def test_a_cache_with_a_zero_bound_holds_nothing_and_counts_misses(entries, size):
    registry = CollectorRegistry()
    cache = LabelEmbeddingCache(entries, size, registry)
    assert not cache.enabled and not cache.put(key("cat"), vector(0))
    assert cache.get(key("cat")) is None and len(cache) == 0
    assert sample(registry, "mmship_label_cache_misses_total", "clip") == 1


def test_evictions_are_counted_for_the_evicted_entrys_model():
    registry = CollectorRegistry()
    siglip = TextTower("siglip", "fp32", "onnxruntime", "cpu", "cc" * 32)
    cache = LabelEmbeddingCache(1, 10**6, registry)
    cache.put(key("cat"), vector(0))
    cache.put(key("cat", tower=siglip), vector(1))
    assert sample(registry, "mmship_label_cache_evictions_total", "clip") == 1
    assert sample(registry, "mmship_label_cache_evictions_total", "siglip") == 0
