"""Benchmark results: one :class:`LevelResult` per (modality, concurrency)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LevelResult:
    """What one concurrency level of one modality measured.

    Latencies are of successful requests only, in milliseconds; ``errors`` counts error
    answers (any status >= 400, 503 included: the bench does not retry) and transport
    failures, ``error_kinds`` how many of each.
    """

    modality: str
    concurrency: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Successful requests."""
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """The ``q``-th latency percentile in ms, or ``None`` without successes."""
        if not self.latencies_ms:
            return None
        return float(np.percentile(np.asarray(self.latencies_ms), q))

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)

    def to_dict(self) -> dict[str, Any]:
        """Summary and raw latencies, JSON-ready."""
        return {
            "modality": self.modality, "concurrency": self.concurrency, "duration_s": round(self.duration_s, 4),
            "requests": self.requests, "errors": self.errors, "rps": round(self.rps, 3),
            "p50_ms": self.p50, "p95_ms": self.p95, "p99_ms": self.p99,
            "error_kinds": dict(self.error_kinds), "latencies_ms": [round(v, 3) for v in self.latencies_ms],
        }


@dataclass
class BenchResult:
    """A whole run: where, how, and every level."""

    url: str
    protocol: str
    model: str | None
    duration_s: float
    levels: list[LevelResult] = field(default_factory=list)

    def modalities(self) -> list[str]:
        """Modalities in the order they ran."""
        return list(dict.fromkeys(level.modality for level in self.levels))

    def by_modality(self, modality: str) -> list[LevelResult]:
        """The levels of one modality, by concurrency."""
        return sorted((lv for lv in self.levels if lv.modality == modality), key=lambda lv: lv.concurrency)

    def to_dict(self) -> dict[str, Any]:
        """The raw results, JSON-ready."""
        from mmship import __version__

        return {
            "mmship_version": __version__, "url": self.url, "protocol": self.protocol, "model": self.model,
            "duration_s": self.duration_s, "levels": [level.to_dict() for level in self.levels],
        }
