"""The label-embedding cache of ``/classify`` and ``/rank``: a least-recently-used map from
(text tower, templates, label) to the label's unit-length text embedding.

A label asked again is answered from here without tokenizing it or running the text
graph. The key names everything that makes the embedding (:class:`TextTower`: the
model's name, the text graph's precision, runtime, accelerator and the sha256 of its
file; then the templates and the label, compared as exact strings), so an entry can only
ever answer the request that would have computed it. The cache is bounded twice, by
entries and by bytes (vectors plus the key's strings plus a fixed overhead per entry);
the least recently used entries go first. Hits, misses and evictions are counted per
model in the server's Prometheus registry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

#: Bytes counted per entry on top of its vector and its key's strings (the dict slot,
#: the key and value objects, the array header).
ENTRY_OVERHEAD_BYTES = 400
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TextTower:
    """What computes a text embedding, as served: two towers with equal fields give
    equal embeddings for equal prompts."""

    model: str
    precision: str
    runtime: str
    accelerator: str
    #: sha256 of the text graph's file(s) in the bundle (empty when the manifest lists none).
    digest: str

    def nbytes(self) -> int:
        """Bytes of the strings it holds."""
        return sum(len(part.encode("utf-8")) for part in (self.model, self.precision, self.runtime, self.accelerator, self.digest))


@dataclass(frozen=True)
class LabelKey:
    """One cached label: the tower, the templates of its prompt(s), the label."""

    tower: TextTower
    templates: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class LabelEmbedding:
    """A label's text embedding: unit length (the mean of its prompts' unit embeddings,
    re-normalised, for an ensemble), float32, read-only; and whether a prompt was cut."""

    vector: np.ndarray
    truncated: bool


def _strings_nbytes(key: LabelKey) -> int:
    return key.tower.nbytes() + len(key.label.encode("utf-8")) + sum(len(t.encode("utf-8")) for t in key.templates)


class LabelCacheMetrics:
    """The cache's Prometheus series, in the server's registry."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.hits = Counter(
            "mmship_label_cache_hits_total", "label embeddings answered from the cache", ["model"], registry=registry
        )
        self.misses = Counter(
            "mmship_label_cache_misses_total", "label embeddings computed (not in the cache)", ["model"], registry=registry
        )
        self.evictions = Counter(
            "mmship_label_cache_evictions_total", "label embeddings dropped to stay within the bounds", ["model"],
            registry=registry,
        )
        self.entries = Gauge("mmship_label_cache_entries", "label embeddings held", registry=registry)
        self.bytes = Gauge("mmship_label_cache_bytes", "bytes the held label embeddings count", registry=registry)


class LabelEmbeddingCache:
    """A least-recently-used cache of label embeddings bounded by entries and by bytes.

    :param max_entries: most labels held (0: the cache is off, every lookup misses).
    :param max_bytes: most bytes held; an entry larger than this is never stored.
    :param registry: where the hit/miss/eviction series go (``None``: nowhere).
    """

    def __init__(self, max_entries: int, max_bytes: int, registry: CollectorRegistry | None = None) -> None:
        self.max_entries = max(0, int(max_entries))
        self.max_bytes = max(0, int(max_bytes))
        self.metrics = LabelCacheMetrics(registry)
        self._entries: OrderedDict[LabelKey, tuple[LabelEmbedding, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the bounds let nothing in."""
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes the held entries count."""
        return self._bytes

    def get(self, key: LabelKey) -> LabelEmbedding | None:
        """The entry for ``key`` (now the most recently used), or ``None``; counts a hit or a miss."""
        with self._lock:
            held = self._entries.get(key)
            if held is not None:
                self._entries.move_to_end(key)
        (self.metrics.hits if held is not None else self.metrics.misses).labels(key.tower.model).inc()
        return held[0] if held is not None else None

    def put(self, key: LabelKey, value: LabelEmbedding) -> bool:
        """Hold ``value`` under ``key``, evicting the least recently used entries to stay
        within the bounds; ``False`` when it cannot be held (cache off, or too large)."""
        size = int(value.vector.nbytes) + _strings_nbytes(key) + ENTRY_OVERHEAD_BYTES
        if not self.enabled or size > self.max_bytes:
            return False
        vector = value.vector
        if vector.flags.writeable:
            vector = vector.copy()
            vector.setflags(write=False)
            value = LabelEmbedding(vector, value.truncated)
        evicted: list[str] = []
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            while self._entries and (len(self._entries) >= self.max_entries or self._bytes + size > self.max_bytes):
                gone, (_, gone_size) = self._entries.popitem(last=False)
                self._bytes -= gone_size
                evicted.append(gone.tower.model)
            self._entries[key] = (value, size)
            self._bytes += size
            entries, held = len(self._entries), self._bytes
        for model in evicted:
            self.metrics.evictions.labels(model).inc()
        self.metrics.entries.set(entries)
        self.metrics.bytes.set(held)
        return True

    def clear(self) -> None:
        """Drop every entry (not counted as evictions)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
        self.metrics.entries.set(0)
        self.metrics.bytes.set(0)
