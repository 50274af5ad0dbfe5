"""Graphs loaded through the inference-runtime registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmship.core.manager import get_plugin_manager
from mmship.core.runtime import GraphSession
from mmship.core.specs import ExportedGraph


def load_path(path: str | Path, runtime: str = "onnxruntime", threads: int | None = None, **options: Any) -> GraphSession:
    """A session for the graph file at ``path`` from the runtime called ``runtime``."""
    cls = get_plugin_manager().runtimes().get(runtime)
    return cls().load(Path(path), threads=threads, options=options or None)


def load_graph(graph: ExportedGraph, threads: int | None = None) -> GraphSession:
    """A session for a graph the build produced, from the runtime it was built for."""
    return load_path(graph.path, graph.runtime, threads, **graph.runtime_options)
