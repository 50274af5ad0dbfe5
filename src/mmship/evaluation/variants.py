"""Timing of graph variants at build time and the choice of the fastest per tower.

Every variant that met the accuracy budget is timed on the build machine at batch 1 and
at the serving batch, each with the cores this process may use, the same way for every
runtime (:func:`~mmship.evaluation.timing.median_latency_ms`: one warm-up call, a few
timed calls). The fastest at the serving batch is chosen per tower (batch 1 breaks ties);
the figures go into the manifest with the choice.
"""

from __future__ import annotations

from typing import Any

from mmship.core.specs import ExportedGraph
from mmship.evaluation.feeds import example_feeds
from mmship.evaluation.sessions import GraphSessions, session_for
from mmship.evaluation.timing import median_latency_ms


def time_graph(
    graph: ExportedGraph, batch_size: int, runs: int = 3, sessions: GraphSessions | None = None
) -> dict[str, float]:
    """Median ms per call of ``graph`` at batch 1 and at ``batch_size``."""
    session = session_for(graph, sessions)
    figures: dict[str, float] = {}
    for label, batch, budget in (("batch1", 1, 0.3), ("batch", batch_size, 0.0)):
        feeds = example_feeds(graph.inputs, batch=batch)
        figures[label] = round(median_latency_ms(lambda: session.run(feeds), runs=runs, warmup=1, budget_s=budget), 3)
    figures["batch_size"] = batch_size
    return figures


def time_variant(
    graphs: list[ExportedGraph], batch_size: int, runs: int = 3, sessions: GraphSessions | None = None
) -> dict[str, dict[str, float]]:
    """``{graph name: timing}`` for the towers of one variant (see :func:`time_graph`)."""
    return {graph.name: time_graph(graph, batch_size, runs, sessions) for graph in graphs}


def graph_accuracy(accuracy: dict[str, Any], key: str, graph: ExportedGraph) -> dict[str, float]:
    """mean/min cosine to fp32 of ``graph``'s own outputs in the accuracy report of ``key``."""
    outputs = (accuracy.get(key) or {}).get("outputs", {})
    mine = [outputs[s.name] for s in graph.outputs if s.name in outputs]
    if not mine:
        return {}
    return {
        "mean_cosine": round(min(o["mean_cosine"] for o in mine), 6),
        "min_cosine": round(min(o["min_cosine"] for o in mine), 6),
    }


def choose_fastest(
    graphs: dict[str, list[ExportedGraph]], timing: dict[str, dict[str, dict[str, float]]], accuracy: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per tower, the timed variant fastest at the serving batch (then at batch 1), with
    its figures and the runner-up in ``reason``."""
    chosen: dict[str, dict[str, Any]] = {}
    towers = {g.name: g for items in graphs.values() for g in items}
    for tower in towers:
        measured = [(key, t[tower]) for key, t in timing.items() if tower in t]
        if not measured:
            continue
        ranked = sorted(measured, key=lambda item: (item[1]["batch"], item[1]["batch1"]))
        key, figures = ranked[0]
        graph = next(g for g in graphs[key] if g.name == tower)
        reason = f"fastest of {len(ranked)} verified variants at batch {int(figures['batch_size'])}"
        if len(ranked) > 1:
            other_key, other = ranked[1]
            other_graph = next(g for g in graphs[other_key] if g.name == tower)
            reason += (f" ({figures['batch']:.1f} ms; next {other_graph.runtime} {other_graph.precision} "
                       f"{other['batch']:.1f} ms)")
        chosen[tower] = {
            "runtime": graph.runtime, "precision": graph.precision,
            "batch1_ms": figures["batch1"], "batch_ms": figures["batch"], "batch_size": int(figures["batch_size"]),
            "mean_cosine": graph_accuracy(accuracy, key, graph).get("mean_cosine"), "reason": reason,
        }
    return chosen
