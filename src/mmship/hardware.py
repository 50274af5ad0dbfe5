"""Facts about this machine that engines are tuned by."""

from __future__ import annotations

import os


def cpu_threads() -> int:
    """Threads for one session: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)
