"""Export stage: one ONNX graph per tower with a dynamic batch axis, checked for parity.

Every input and output gets a dynamic batch axis named ``batch``; text inputs share a
``sequence`` axis. After export the graph is run at batch 1 and at batch 3 (neither is
the example batch, so an axis frozen by accident shows up) and compared with the eager
module: max abs diff and min cosine go into the graph's report, and the build fails
when parity is off.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmship import hookimpl
from mmship.core.adapter import Adapter, ExportModule
from mmship.core.errors import BuildError
from mmship.core.specs import ExportedGraph, TensorSpec
from mmship.core.stages import ExportOptions
from mmship.evaluation.compare import compare
from mmship.ort import make_session, run

#: Parity below these fails the build.
MIN_PARITY_COSINE = 0.9999
MAX_PARITY_ABS_DIFF = 1e-3
PARITY_BATCHES = (1, 3)


def _axis_names(spec: TensorSpec) -> dict[int, str]:
    names = {}
    for axis in spec.dynamic_axes:
        if axis == 0:
            names[axis] = "batch"
        elif spec.modality == "text" and axis == 1:
            names[axis] = "sequence"
        else:
            names[axis] = f"{spec.name}_axis{axis}"
    return names


def export_module(adapter: Adapter, item: ExportModule, path: Path, opset: int) -> ExportedGraph:
    """Export one module with the legacy tracer (correct for these models, one file)."""
    import torch

    inputs = [adapter.spec(n) for n in item.graph.inputs]
    outputs = [adapter.spec(n) for n in item.graph.outputs]
    dynamic_axes = {s.name: _axis_names(s) for s in (*inputs, *outputs) if s.dynamic_axes}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            item.module,
            item.example_inputs,
            str(path),
            input_names=[s.name for s in inputs],
            output_names=[s.name for s in outputs],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return ExportedGraph(name=item.graph.name, path=path, inputs=inputs, outputs=outputs, opset=opset)


def _eager(module: Any, example: tuple[Any, ...]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        result = module(*example)
    results = result if isinstance(result, (tuple, list)) else (result,)
    return [r.detach().cpu().numpy() for r in results]


def check_parity(adapter: Adapter, model: Any, graph: ExportedGraph) -> dict[str, Any]:
    """Compare the ONNX graph with eager PyTorch at batch 1 and batch 3."""
    session = make_session(graph.path)
    figures: dict[str, Any] = {}
    for batch in PARITY_BATCHES:
        item = next(m for m in adapter.export_modules(model, batch_size=batch) if m.graph.name == graph.name)
        expected = _eager(item.module, item.example_inputs)
        feeds = {spec.name: tensor.numpy() for spec, tensor in zip(graph.inputs, item.example_inputs)}
        got = run(session, feeds)
        for spec, reference in zip(graph.outputs, expected):
            actual = got[spec.name]
            if actual.shape != reference.shape:
                raise BuildError(
                    f"exported graph {graph.name!r} gives {spec.name} of shape {list(actual.shape)} at batch {batch}, "
                    f"eager PyTorch gives {list(reference.shape)}: an axis was fixed during export",
                    hint="the adapter's output spec must mark dynamic axes with -1",
                )
            figures[f"batch{batch}"] = figures.get(f"batch{batch}", {}) | {spec.name: compare(reference, actual)}
    worst_cos = min(v["min_cosine"] for b in figures.values() for v in b.values())
    worst_abs = max(v["max_abs_diff"] for b in figures.values() for v in b.values())
    figures["min_cosine"] = worst_cos
    figures["max_abs_diff"] = worst_abs
    if worst_cos < MIN_PARITY_COSINE or worst_abs > MAX_PARITY_ABS_DIFF:
        raise BuildError(
            f"exported graph {graph.name!r} disagrees with eager PyTorch: min cosine {worst_cos:.6f} "
            f"(needs >= {MIN_PARITY_COSINE}), max abs diff {worst_abs:.2e} (needs <= {MAX_PARITY_ABS_DIFF})",
            hint="try another --opset, or report the model: an operator is exported wrongly",
        )
    return figures


@hookimpl
def mmship_export(adapter: Adapter, model: Any, workdir: Path, options: ExportOptions) -> list[ExportedGraph]:
    """Export every graph of the adapter and check each one's parity."""
    graphs = []
    for item in adapter.export_modules(model, batch_size=options.batch_size):
        graph = export_module(adapter, item, Path(workdir) / f"{item.graph.name}.fp32.onnx", options.opset)
        graph.report["parity"] = check_parity(adapter, model, graph)
        graphs.append(graph)
    return graphs
