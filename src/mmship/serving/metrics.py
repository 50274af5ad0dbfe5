"""Prometheus metrics of one server: requests, latency, batch sizes, queue depth, memory."""

from __future__ import annotations

import os
from collections.abc import Callable

import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from mmship.serving.batcher import BatchObserver

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24)
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)


class ServerMetrics:
    """The metrics of one app, in their own registry (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mmship_requests_total", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "mmship_request_latency_seconds", "HTTP request latency by route", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.batch_size = Histogram(
            "mmship_batch_size", "rows per graph run", ["graph"], buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.batch_seconds = Histogram(
            "mmship_batch_seconds", "graph run time per batch", ["graph"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("mmship_queue_depth", "rows waiting per graph", ["graph"], registry=self.registry)
        self.memory = Gauge("mmship_process_resident_memory_bytes", "server process RSS", registry=self.registry)
        self.truncated = Counter("mmship_truncated_texts_total", "texts cut to the model's max length", registry=self.registry)
        self._process = psutil.Process(os.getpid())
        #: Called with ``(graph, requests, rows, seconds)`` after every graph run (admission control).
        self.run_listeners: list[Callable[[str, int, int, float], None]] = []

    def observer(self) -> BatchObserver:
        """Callbacks for the batchers."""

        def on_batch(graph: str, rows: int, seconds: float) -> None:
            self.batch_size.labels(graph).observe(rows)
            self.batch_seconds.labels(graph).observe(seconds)

        def on_run(graph: str, requests: int, rows: int, seconds: float) -> None:
            for listener in self.run_listeners:
                listener(graph, requests, rows, seconds)

        return BatchObserver(
            on_batch=on_batch, on_run=on_run, on_queue_depth=lambda g, d: self.queue_depth.labels(g).set(d)
        )

    def render(self) -> bytes:
        """The Prometheus text exposition, with memory sampled now."""
        self.memory.set(self._process.memory_info().rss)
        return generate_latest(self.registry)
