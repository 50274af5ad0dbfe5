"""The inference engine: a bundle's graphs, one variant per tower, loaded through the
inference-runtime registry.

The variant served per tower is the build's choice (the fastest that met the accuracy
budget on the build machine), or the one ``precision`` / ``runtime`` name; where the
chosen runtime is not installed, an onnxruntime variant is served with a note
(:func:`mmship.core.variants.select_graphs`). Bundles from before variants were recorded
serve their onnxruntime graphs at ``serving_params.precision``."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmship.core.bundle import Bundle, GraphFile
from mmship.core.errors import BundleError, MmshipError
from mmship.core.manager import get_plugin_manager
from mmship.core.runtime import GraphSession, InferenceRuntime
from mmship.core.specs import GraphSpec, TensorSpec
from mmship.core.threads import map_in_threads
from mmship.core.variants import select_graphs
from mmship.hardware import cpu_threads


@dataclass
class GraphRunner:
    """One graph's session and its specs."""

    spec: GraphSpec
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    session: GraphSession
    runtime: str = "onnxruntime"
    #: Shared by the graphs of every model a process serves: how many run at once
    #: (``None``: no limit).
    gate: threading.BoundedSemaphore | None = None
    #: The manifest entry loaded (file, precision, runtime, load options, build figures).
    file: GraphFile | None = None
    #: Calls the session serves at once (its runtime's streams; 1: one at a time).
    streams: int = 1
    #: With streams: a second session of the same graph on every thread, for a request that
    #: runs alone (:meth:`lone`), so streams cost no latency at low load.
    alone: GraphSession | None = None

    @property
    def precision(self) -> str:
        """The precision of the variant loaded."""
        return self.file.precision if self.file is not None else "fp32"

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self.session, feeds)

    def lone(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a request that runs alone: on :attr:`alone` (every thread) when there is one."""
        return self._run(self.alone or self.session, feeds)

    def _run(self, session: GraphSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {s.name: feeds[s.name] for s in self.inputs}
        with self.gate if self.gate is not None else contextlib.nullcontext():
            return session.run(feeds, [s.name for s in self.outputs])


def choose_accelerator(asked: str | None, bundle_default: str, runtime: InferenceRuntime) -> tuple[str, list[str]]:
    """The accelerator to serve on: the one asked for (an error if it is missing), else
    the bundle's when this machine has it, else the CPU with a note saying why."""
    if asked is not None:
        return asked, []
    if bundle_default == "cpu":
        return "cpu", []
    try:
        runtime.providers(bundle_default)
    except MmshipError as exc:
        return "cpu", [f"the bundle asks for {bundle_default!r}, serving on the CPU instead: {exc.message}"]
    return bundle_default, []


def graph_streams(runtime: InferenceRuntime, streams: int) -> int:
    """The streams a graph of ``runtime`` gets when ``streams`` are asked for: 1 where the
    runtime has none (:attr:`~mmship.core.runtime.InferenceRuntime.supports_streams`)."""
    return streams if runtime.supports_streams else 1


def _load_towers(
    bundle: Bundle, graph_specs: list[GraphSpec], files: dict[str, GraphFile], runtimes: dict[str, InferenceRuntime],
    threads: int, accelerator: str, streams: int = 1,
) -> dict[str, GraphSession]:
    """One session per tower, the towers loaded in threads (compiling two full-size OpenVINO
    towers: 2.8-3.2 s one after the other, 1.5-1.7 s together; onnxruntime 3.3 -> 2.3 s).
    Runtimes that can are handed the bytes that were hashed, never a path to reopen, and
    ``streams`` where they have them."""

    def load(graph_spec: GraphSpec) -> GraphSession:
        file = files[graph_spec.name]
        runtime = runtimes[file.runtime]
        extra: dict[str, Any] = {"read": bundle.read} if runtime.reads_verified_bytes else {}
        if graph_streams(runtime, streams) > 1:
            extra["streams"] = streams
        return runtime.load(
            bundle.path(file.file), threads=threads, accelerator=accelerator,
            options=file.runtime_options or None, **extra,
        )

    sessions = map_in_threads(load, graph_specs, name="mmship-load")
    return {spec.name: session for spec, session in zip(graph_specs, sessions)}


def _streamed(graph_specs: list[GraphSpec], files: dict[str, GraphFile], runtimes: dict[str, InferenceRuntime],
              streams: int) -> list[GraphSpec]:
    """The graphs that run on streams (and so get a second session for lone requests)."""
    return [g for g in graph_specs if graph_streams(runtimes[files[g.name].runtime], streams) > 1]


class Engine:
    """Sessions for every graph of a bundle, one variant per tower (see the module doc)."""

    def __init__(
        self, bundle: Bundle, precision: str | None = None, threads: int | None = None, accelerator: str | None = None,
        gate: threading.BoundedSemaphore | None = None,
        runtime: str | None = None,
        streams: int = 1,
    ) -> None:
        """:param gate: graph runs of this engine pass it (shared by the engines of one
            process serving several models, see :mod:`mmship.serving.served_bundles`).
        :param streams: batches each graph runs at once, on runtimes with streams (the
            threads split between them); graphs of other runtimes run one at a time."""
        manifest = bundle.manifest
        if not manifest.graphs:
            raise BundleError(
                f"bundle {bundle.root} carries no ONNX graphs (adapter {manifest.adapter!r} is served from its checkpoint)",
                hint="deploy it with a target that serves Hugging Face checkpoints, e.g. --target friendli",
            )
        self.bundle = bundle
        self.threads = threads or cpu_threads()
        runtimes = get_plugin_manager().runtimes()
        selection = select_graphs(manifest, runtimes, precision=precision, runtime=runtime)
        files = selection.files
        #: The precision served: one word when every tower has it, else per tower.
        self.precision = selection.precision
        loaded = {name: runtimes.get(name)() for name in sorted({f.runtime for f in files.values()})}
        self.runtimes = sorted(loaded)
        first = loaded[self.runtimes[0]]
        self.accelerator, notes = choose_accelerator(accelerator, manifest.serving_params.accelerator, first)
        self.notes = [*selection.notes, *notes]
        specs = {s.name: s for s in (*manifest.inputs, *manifest.outputs)}
        self.graphs: dict[str, GraphRunner] = {}
        sessions = _load_towers(bundle, manifest.graph_specs, files, loaded, self.threads, self.accelerator, streams)
        streamed = _streamed(manifest.graph_specs, files, loaded, streams)
        alone = _load_towers(bundle, streamed, files, loaded, self.threads, self.accelerator) if streamed else {}
        single = sorted({f.runtime for f in files.values() if graph_streams(loaded[f.runtime], streams) < streams})
        if streams > 1 and single:
            self.notes.append(
                f"--streams {streams}: {', '.join(single)} has no streams; its graphs run one batch at a time"
            )
        for graph_spec in manifest.graph_specs:
            file = files[graph_spec.name]
            self.graphs[graph_spec.name] = GraphRunner(
                spec=graph_spec,
                inputs=[specs[n] for n in graph_spec.inputs],
                outputs=[specs[n] for n in graph_spec.outputs],
                session=sessions[graph_spec.name],
                runtime=file.runtime,
                gate=gate,
                file=file,
                streams=graph_streams(loaded[file.runtime], streams),
                alone=alone.get(graph_spec.name),
            )

    @property
    def input_specs(self) -> dict[str, TensorSpec]:
        """Every graph input by name."""
        return {s.name: s for g in self.graphs.values() for s in g.inputs}

    @property
    def output_specs(self) -> dict[str, TensorSpec]:
        """Every graph output by name."""
        return {s.name: s for g in self.graphs.values() for s in g.outputs}

    def graphs_for(self, available: set[str]) -> list[GraphRunner]:
        """The graphs whose inputs are all in ``available``."""
        return [g for g in self.graphs.values() if all(s.name in available for s in g.inputs)]

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run every graph once per batch size so the first request is not slow."""
        from mmship.evaluation.feeds import example_feeds

        for graph in self.graphs.values():
            for batch in batch_sizes:
                graph(example_feeds(graph.inputs, batch=batch))
            if graph.alone is not None:
                graph.lone(example_feeds(graph.inputs, batch=1))
