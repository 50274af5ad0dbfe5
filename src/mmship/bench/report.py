"""Bench output: a rich table per modality, a PNG plot, the raw JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from mmship.bench.results import BenchResult
from mmship.core.errors import MmshipError

COLUMNS = ("concurrency", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def tables(result: BenchResult) -> list[Table]:
    """One table per modality: concurrency, requests, req/s, p50/p95/p99 (ms), errors."""
    from mmship.core.cli.console import table

    out = []
    for modality in result.modalities():
        rows = []
        for level in result.by_modality(modality):
            errors = str(level.errors)
            if level.error_kinds:
                errors += " (" + ", ".join(f"{k}: {n}" for k, n in sorted(level.error_kinds.items())) + ")"
            rows.append(
                (level.concurrency, level.requests, f"{level.rps:.1f}", _ms(level.p50), _ms(level.p95), _ms(level.p99), errors)
            )
        title = f"{modality}: {result.protocol} -> {result.url} ({result.duration_s:g} s per level)"
        out.append(table(title, COLUMNS, rows))
    return out


def save_json(result: BenchResult, path: Path) -> Path:
    """Write the raw results (summaries and every latency) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def save_plot(result: BenchResult, path: Path) -> Path:
    """Write a PNG: throughput vs concurrency, and p50/p95 latency vs concurrency, one
    line per modality. matplotlib is imported here only, with the Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MmshipError("--plot needs matplotlib, which is not installed", hint="pip install matplotlib") from None
    figure = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(figure)
    throughput, latency = figure.subplots(1, 2)
    levels_all = sorted({lv.concurrency for lv in result.levels})
    for index, modality in enumerate(result.modalities()):
        color = f"C{index}"
        levels = result.by_modality(modality)
        xs = [lv.concurrency for lv in levels]
        throughput.plot(xs, [lv.rps for lv in levels], marker="o", color=color, label=modality)
        for q, style in ((50, "-"), (95, "--")):
            ys = [lv.percentile(q) for lv in levels]
            latency.plot(xs, [float("nan") if y is None else y for y in ys], style, marker="o", color=color, label=f"{modality} p{q}")
    throughput.set(title="throughput", xlabel="concurrency", ylabel="requests / s")
    latency.set(title="latency", xlabel="concurrency", ylabel="ms")
    for axes in (throughput, latency):
        if len(levels_all) > 1:
            axes.set_xscale("log", base=2)
        axes.set_xticks(levels_all, [str(c) for c in levels_all])
        axes.minorticks_off()
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(f"mmship bench: {result.protocol} -> {result.url}", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
