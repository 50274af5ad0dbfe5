"""The build's session cache: one session per graph (file, runtime, load options), the
towers of a variant loaded at the same time, released on request."""

from __future__ import annotations

import threading
from pathlib import Path

from mmship.core.specs import ExportedGraph, TensorSpec
from mmship.evaluation import sessions as sessions_module
from mmship.evaluation.sessions import GraphSessions


def _graph(name: str, **options: str) -> ExportedGraph:
    spec = TensorSpec(name="x", dtype="float32", shape=[-1, 3], modality="image")
    return ExportedGraph(
        name=name, path=Path(f"{name}.xml"), runtime="openvino", runtime_options=options, inputs=[spec], outputs=[spec]
    )


def test_towers_are_loaded_together_once_each(monkeypatch):
    barrier = threading.Barrier(2, timeout=10)  # sequential loads would break it
    calls: list[str] = []

    def fake_load(graph, threads=None):
        calls.append(graph.name)
        barrier.wait()
        return object()

    monkeypatch.setattr(sessions_module, "load_graph", fake_load)
    cache = GraphSessions()
    image, text = _graph("image"), _graph("text")
    cache.preload([image, text])
    first = cache.get(image)
    cache.preload([image, text])  # nothing left to load
    assert sorted(calls) == ["image", "text"] and cache.loads == 2 and len(cache) == 2
    assert cache.get(image) is first
    cache.release([image])
    assert len(cache) == 1


def test_load_options_make_a_different_session(monkeypatch):
    monkeypatch.setattr(sessions_module, "load_graph", lambda graph, threads=None: object())
    cache = GraphSessions()
    fp32 = _graph("image", INFERENCE_PRECISION_HINT="f32")
    bf16 = _graph("image", INFERENCE_PRECISION_HINT="bf16")  # same IR file, loaded as bf16
    assert cache.get(fp32) is not cache.get(bf16) and cache.loads == 2
