"""Optimize stage: onnxruntime's offline graph optimization, kept only when measured faster.

The optimized graph is written with onnxruntime's ``extended`` level at most (``all``
adds hardware-specific layouts that do not travel to other machines). Both graphs are
timed at batch 1 on this machine; the optimized one is shipped only when it is at least
``min_speedup`` times faster, and the figures go into the report either way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mmship import hookimpl
from mmship.core.specs import ExportedGraph
from mmship.core.stages import OptimizeOptions
from mmship.evaluation.feeds import example_feeds
from mmship.evaluation.timing import median_latency_ms
from mmship.ort import make_session

SAVED_LEVELS = {"basic": "basic", "extended": "extended", "all": "extended"}




def offline_optimize(graph: ExportedGraph, out: Path, level: str) -> Path:
    """Write the graph after onnxruntime's offline optimization at ``level``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    options.optimized_model_filepath = str(out)
    options.log_severity_level = 3
    ort.InferenceSession(str(graph.path), sess_options=options, providers=["CPUExecutionProvider"])
    return out


@hookimpl(trylast=True)
def mmship_optimize(graph: ExportedGraph, workdir: Path, options: OptimizeOptions) -> ExportedGraph:
    """Optimize offline; keep the result only when it is measurably faster (ONNX graphs
    for onnxruntime only: other runtimes' graphs pass unchanged)."""
    if options.level == "none" or graph.runtime != "onnxruntime":
        return graph
    level = SAVED_LEVELS[options.level]
    handle, name = tempfile.mkstemp(prefix=f"{graph.name}.{graph.precision}.opt-", suffix=".onnx", dir=workdir)
    os.close(handle)  # a fresh name per call: an earlier result is never overwritten
    out = Path(name)
    offline_optimize(graph, out, level)
    feeds = example_feeds(graph.inputs)
    # Both timed the same way: the runtime applies its own online optimizations to each.
    before_session, after_session = make_session(graph.path), make_session(out)
    before = median_latency_ms(lambda: before_session.run(None, feeds))
    after = median_latency_ms(lambda: after_session.run(None, feeds))
    # decided on the speedup as reported (a 0.9996 reported as 1.0 was refused at min 1.0)
    speedup = round(before / after, 3) if after > 0 else 0.0
    figures = {"level": level, "latency_ms_before": round(before, 3), "latency_ms_after": round(after, 3), "speedup": speedup}
    if speedup >= options.min_speedup:
        figures["applied"] = True
        return graph.model_copy(update={"path": out, "report": graph.report | {"optimize": figures}, "notes": [*graph.notes, f"ort {level} offline"]})
    figures["applied"] = False
    out.unlink(missing_ok=True)
    return graph.model_copy(update={"report": graph.report | {"optimize": figures}})
