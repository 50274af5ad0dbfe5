"""The load generator behind ``mmship bench`` (a library): workers, table and plot.

* :mod:`.results`: :class:`~.results.LevelResult` / :class:`~.results.BenchResult`;
* :mod:`.loadgen`: asyncio + httpx workers, :func:`~.loadgen.bench_url`;
* :mod:`.report`: the rich table per modality and the PNG plot (matplotlib, lazily);
* :mod:`.urls`: :func:`~.urls.resolve_target`, a URL (or a bundle folder
  served locally for the run) -> the base URL to load.
"""

from __future__ import annotations

from mmship.bench.loadgen import BenchPlan, bench_url
from mmship.bench.results import BenchResult, LevelResult
from mmship.bench.urls import resolve_target

__all__ = ["BenchPlan", "BenchResult", "LevelResult", "bench_url", "resolve_target"]
