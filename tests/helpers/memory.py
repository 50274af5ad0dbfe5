"""Watch this process's resident memory while something runs (the test servers run in a
thread of the test process, so their allocations show up here)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psutil


@dataclass
class RssGrowth:
    """Resident memory at the start and the highest sample seen, in bytes."""

    start: int = 0
    peak: int = 0

    @property
    def grown(self) -> int:
        """How far the peak rose above the start."""
        return max(0, self.peak - self.start)


@contextlib.contextmanager
def rss_growth(interval_s: float = 0.002) -> Iterator[RssGrowth]:
    """Sample RSS every ``interval_s`` in a thread for the duration of the block."""
    process = psutil.Process(os.getpid())
    growth = RssGrowth(start=process.memory_info().rss)
    growth.peak = growth.start
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            growth.peak = max(growth.peak, process.memory_info().rss)
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield growth
    finally:
        stop.set()
        thread.join()
        growth.peak = max(growth.peak, process.memory_info().rss)
