"""onnxruntime helpers for the plugins that work on ONNX graphs with onnxruntime's own
tools (export parity, quantize, optimize) and for the ``onnxruntime`` runtime plugin:
execution providers per accelerator and sessions with explicit threads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmship.core.bundle_files import path_problem
from mmship.core.errors import BundleError, RuntimeUnavailableError
from mmship.hardware import cpu_threads

#: Serving accelerator -> onnxruntime execution providers, best first.
ACCELERATOR_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def providers_for(accelerator: str) -> list[str]:
    """The execution providers for ``accelerator``; raises when its first one is missing."""
    import onnxruntime as ort

    wanted = ACCELERATOR_PROVIDERS.get(accelerator)
    if wanted is None:
        raise RuntimeUnavailableError(
            f"unknown accelerator {accelerator!r}; expected one of {', '.join(ACCELERATOR_PROVIDERS)}",
            hint="use --accelerator cpu, cuda or tensorrt",
        )
    available = set(ort.get_available_providers())
    if wanted[0] not in available:
        raise RuntimeUnavailableError(
            f"accelerator {accelerator!r} needs onnxruntime's {wanted[0]}, and this onnxruntime has only "
            f"{', '.join(sorted(available))}",
            hint="install onnxruntime-gpu (with CUDA/TensorRT on the machine), or serve with --accelerator cpu",
        )
    return [p for p in wanted if p in available]


def make_session(
    path: str | Path | bytes, threads: int | None = None, spinning: bool = False, optimize: str = "all",
    providers: list[str] | None = None, external: Mapping[str, bytes] | None = None,
) -> Any:
    """An onnxruntime session (CPU unless ``providers`` say otherwise) with explicit
    threads and (by default) no spinning, so several sessions in one process do not
    steal each other's cores.

    ``path`` may be the model's bytes; ``external`` then holds the bytes of its
    external-data files by the location the graph names (onnxruntime reads nothing from
    disk for them)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimize]
    options.log_severity_level = 3
    if external:
        names = list(external)
        options.add_external_initializers_from_files_in_memory(
            names, [external[n] for n in names], [len(external[n]) for n in names]
        )
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, sess_options=options, providers=providers or ["CPUExecutionProvider"])


def external_data_locations(model: bytes, graph: str) -> list[str]:
    """The external-data files an ONNX model names (``location`` of every tensor stored
    outside it, subgraphs and constant attributes included), each checked to be a plain
    relative path (:class:`BundleError` for an absolute path or ``..``: a graph must not
    reach files outside its bundle). ``graph`` names the model in messages."""
    if b"location" not in model:  # the key is written literally in every external-data entry
        return []
    import onnx

    proto = onnx.load_model_from_string(model)  # external data is never read from bytes
    found: dict[str, None] = {}
    for tensor in _tensors(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        problem = path_problem(location)
        if problem is not None:
            raise BundleError(
                f"graph {graph}: tensor {tensor.name!r} keeps its data in {location!r}, which {problem}",
                hint="a graph's external data must sit in files beside it inside the bundle; rebuild the bundle",
            )
        found[location] = None
    return list(found)


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of ``graph``: initializers, sparse initializers and node
    attributes, in subgraphs too."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def run(session: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an onnxruntime session; outputs by name."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds))))
