"""Prometheus metrics of one server: requests, latency, batch sizes, queue depth, memory.

Every series about a model carries a ``model`` label (the served name): the batch sizes,
batch run times and queue depths of each model's graphs, its truncated texts, and the
requests and latency of each route by the model that answered. A request that names no
served model (a 404, an unknown path) is counted with ``model=""``: label values are only
ever served names, so a client cannot grow the registry by inventing names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class ModelMetrics:
    """One model's view of the server metrics: what a :class:`ModelService` records,
    labelled with the model's name."""

    model: str
    metrics: ServerMetrics

    @property
    def truncated(self) -> Any:
        """The model's truncated-texts counter (``.inc(n)``)."""
        return self.metrics.truncated_texts.labels(self.model)

    def observer(self) -> BatchObserver:
        """Callbacks for the model's batchers."""
        return self.metrics.observer(self.model)


class ServerMetrics:
    """The metrics of one app, in their own registry (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mmship_requests_total", "HTTP requests by route, status and model", ["route", "status", "model"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mmship_request_latency_seconds", "HTTP request latency by route and model", ["route", "model"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.batch_size = Histogram(
            "mmship_batch_size", "rows per graph run", ["graph", "model"], buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.batch_seconds = Histogram(
            "mmship_batch_seconds", "graph run time per batch", ["graph", "model"], buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge("mmship_queue_depth", "rows waiting per graph", ["graph", "model"], registry=self.registry)
        self.memory = Gauge("mmship_process_resident_memory_bytes", "server process RSS", registry=self.registry)
        self.truncated_texts = Counter(
            "mmship_truncated_texts_total", "texts cut to the model's max length", ["model"], registry=self.registry
        )
        self._process = psutil.Process(os.getpid())
        #: Called with ``(model, graph, requests, rows, seconds)`` after every graph run (admission control).
        self.run_listeners: list[Callable[[str, str, int, int, float], None]] = []

    def for_model(self, model: str) -> ModelMetrics:
        """What the service of ``model`` records, labelled with its name."""
        return ModelMetrics(model, self)

    @property
    def truncated(self) -> Any:
        """The truncated-texts counter of a service built without a model name (``model=""``)."""
        return self.truncated_texts.labels("")

    def observer(self, model: str = "") -> BatchObserver:
        """Callbacks for the batchers of ``model``."""

        def on_batch(graph: str, rows: int, seconds: float) -> None:
            self.batch_size.labels(graph, model).observe(rows)
            self.batch_seconds.labels(graph, model).observe(seconds)

        def on_run(graph: str, requests: int, rows: int, seconds: float) -> None:
            for listener in self.run_listeners:
                listener(model, graph, requests, rows, seconds)

        return BatchObserver(
            on_batch=on_batch, on_run=on_run, on_queue_depth=lambda g, d: self.queue_depth.labels(g, model).set(d)
        )

    def render(self) -> bytes:
        """The Prometheus text exposition, with memory sampled now."""
        self.memory.set(self._process.memory_info().rss)
        return generate_latest(self.registry)
