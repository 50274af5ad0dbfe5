"""onnxruntime helpers for the plugins that work on ONNX graphs with onnxruntime's own
tools (export parity, quantize, optimize) and for the ``onnxruntime`` runtime plugin:
execution providers per accelerator and sessions with explicit threads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmship.core.errors import RuntimeUnavailableError
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
    path: str | Path, threads: int | None = None, spinning: bool = False, optimize: str = "all",
    providers: list[str] | None = None,
) -> Any:
    """An onnxruntime session (CPU unless ``providers`` say otherwise) with explicit
    threads and (by default) no spinning, so several sessions in one process do not
    steal each other's cores."""
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
    return ort.InferenceSession(str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"])


def run(session: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an onnxruntime session; outputs by name."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds))))
