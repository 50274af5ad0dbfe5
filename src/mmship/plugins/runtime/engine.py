"""The inference engine: a bundle's graphs at one precision as onnxruntime sessions.

Every session gets the machine's cores with spinning off (two spinning sessions in one
process steal each other's cores: image latency 61 ms instead of 41 ms on 2 cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmship.core.bundle import Bundle
from mmship.core.errors import BundleError, MmshipError
from mmship.core.specs import GraphSpec, TensorSpec
from mmship.plugins.onnx_tools import cpu_threads, make_session, providers_for

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "uint8": np.uint8}


@dataclass
class GraphRunner:
    """One graph's session and its specs."""

    spec: GraphSpec
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    session: Any

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [s.name for s in self.outputs]
        values = self.session.run(names, {s.name: feeds[s.name] for s in self.inputs})
        return dict(zip(names, values))


def choose_accelerator(asked: str | None, bundle_default: str) -> tuple[str, list[str]]:
    """The accelerator to serve on: the one asked for (an error if it is missing), else
    the bundle's when this machine has it, else the CPU with a note saying why."""
    if asked is not None:
        return asked, []
    if bundle_default == "cpu":
        return "cpu", []
    try:
        providers_for(bundle_default)
    except MmshipError as exc:
        return "cpu", [f"the bundle asks for {bundle_default!r}, serving on the CPU instead: {exc.message}"]
    return bundle_default, []


class Engine:
    """Sessions for every graph of a bundle at one precision."""

    def __init__(
        self, bundle: Bundle, precision: str | None = None, threads: int | None = None, accelerator: str | None = None
    ) -> None:
        manifest = bundle.manifest
        if not manifest.graphs:
            raise BundleError(
                f"bundle {bundle.root} carries no ONNX graphs (adapter {manifest.adapter!r} is served from its checkpoint)",
                hint="deploy it with a target that serves Hugging Face checkpoints, e.g. --target friendli",
            )
        self.bundle = bundle
        self.precision = precision or manifest.serving_params.precision
        self.threads = threads or cpu_threads()
        self.accelerator, self.notes = choose_accelerator(accelerator, manifest.serving_params.accelerator)
        providers = providers_for(self.accelerator)
        specs = {s.name: s for s in (*manifest.inputs, *manifest.outputs)}
        self.graphs: dict[str, GraphRunner] = {}
        for graph_spec in manifest.graph_specs:
            path = bundle.graph_path(graph_spec.name, self.precision)
            self.graphs[graph_spec.name] = GraphRunner(
                spec=graph_spec,
                inputs=[specs[n] for n in graph_spec.inputs],
                outputs=[specs[n] for n in graph_spec.outputs],
                session=make_session(path, threads=self.threads, spinning=False, providers=providers),
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
        from mmship.plugins.optimize import example_feeds

        for graph in self.graphs.values():
            for batch in batch_sizes:
                graph(example_feeds(graph.inputs, batch=batch))
