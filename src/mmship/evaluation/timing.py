"""Latency of a call, measured the same way for every runtime."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def median_latency_ms(
    call: Callable[[], object], runs: int = 5, warmup: int = 2, budget_s: float = 0.5, max_runs: int = 50
) -> float:
    """Median wall time of ``call()`` in milliseconds: at least ``runs`` runs, more (up to
    ``max_runs``) while ``budget_s`` lasts, so fast graphs get a steadier median."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < runs or (len(times) < max_runs and time.perf_counter() - started < budget_s):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))
