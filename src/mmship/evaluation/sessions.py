"""Graphs loaded through the inference-runtime registry."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmship.core.manager import get_plugin_manager
from mmship.core.runtime import GraphSession
from mmship.core.specs import ExportedGraph
from mmship.core.threads import map_in_threads


def load_path(path: str | Path, runtime: str = "onnxruntime", threads: int | None = None, **options: Any) -> GraphSession:
    """A session for the graph file at ``path`` from the runtime called ``runtime``."""
    cls = get_plugin_manager().runtimes().get(runtime)
    return cls().load(Path(path), threads=threads, options=options or None)


def load_graph(graph: ExportedGraph, threads: int | None = None) -> GraphSession:
    """A session for a graph the build produced, from the runtime it was built for."""
    return load_path(graph.path, graph.runtime, threads, **graph.runtime_options)


def _key(graph: ExportedGraph) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return str(graph.path), graph.runtime, tuple(sorted((k, str(v)) for k, v in graph.runtime_options.items()))


class GraphSessions:
    """One session per graph, loaded on first use and kept until :meth:`release`: the
    build's checks (batch sizes, padding, accuracy, timing) share it instead of each loading
    the graph again (a session of a full-size tower takes about a second to create)."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str, tuple[tuple[str, str], ...]], GraphSession] = {}
        #: How many sessions were created (what the sharing saves is visible in tests).
        self.loads = 0

    def get(self, graph: ExportedGraph) -> GraphSession:
        """The session of ``graph`` (same file, runtime and load options: the same session)."""
        key = _key(graph)
        if key not in self._sessions:
            self._sessions[key] = load_graph(graph)
            self.loads += 1
        return self._sessions[key]

    def preload(self, graphs: Iterable[ExportedGraph]) -> None:
        """Load the sessions of ``graphs`` not loaded yet, in threads (two full-size towers:
        about 1.7x faster than one after the other)."""
        missing = list({_key(g): g for g in graphs if _key(g) not in self._sessions}.values())
        loaded = map_in_threads(load_graph, missing, name="mmship-load")
        for graph, session in zip(missing, loaded):
            self._sessions[_key(graph)] = session
            self.loads += 1

    def release(self, graphs: Iterable[ExportedGraph]) -> None:
        """Forget the sessions of ``graphs`` (their memory goes with the last reference)."""
        for graph in graphs:
            self._sessions.pop(_key(graph), None)

    def __len__(self) -> int:
        return len(self._sessions)


def session_for(graph: ExportedGraph, sessions: GraphSessions | None) -> GraphSession:
    """``graph``'s session from ``sessions``, or a fresh one when there is no cache."""
    return sessions.get(graph) if sessions is not None else load_graph(graph)
