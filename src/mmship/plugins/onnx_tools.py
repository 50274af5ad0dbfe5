"""Small onnxruntime helpers shared by the build stages: sessions, comparisons, timing."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def cpu_threads() -> int:
    """Threads for one session: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


#: Serving accelerator -> onnxruntime execution providers, best first.
ACCELERATOR_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def providers_for(accelerator: str) -> list[str]:
    """The execution providers for ``accelerator``; raises when its first one is missing."""
    import onnxruntime as ort

    from mmship.core.errors import MmshipError

    wanted = ACCELERATOR_PROVIDERS.get(accelerator)
    if wanted is None:
        raise MmshipError(
            f"unknown accelerator {accelerator!r}; expected one of {', '.join(ACCELERATOR_PROVIDERS)}",
            hint="use --accelerator cpu, cuda or tensorrt",
        )
    available = set(ort.get_available_providers())
    if wanted[0] not in available:
        raise MmshipError(
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
    """Run a session; outputs by name."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds))))


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of two [N, D] arrays (float64)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(denom, 1e-30)


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """max abs diff, min and mean row cosine of ``candidate`` against ``reference``."""
    cos = row_cosines(reference, candidate)
    return {
        "max_abs_diff": float(np.max(np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64)))),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
    }


def median_latency_ms(
    session: Any, feeds: Mapping[str, np.ndarray], runs: int = 5, warmup: int = 2, budget_s: float = 0.5, max_runs: int = 50
) -> float:
    """Median wall time of ``session.run`` in milliseconds: at least ``runs`` runs, more
    (up to ``max_runs``) while the ``budget_s`` lasts, so fast graphs get a steadier median."""
    for _ in range(warmup):
        session.run(None, dict(feeds))
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < runs or (len(times) < max_runs and time.perf_counter() - started < budget_s):
        start = time.perf_counter()
        session.run(None, dict(feeds))
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))
