"""Timing of graph variants at build time and the choice of the fastest per tower.

Every variant that met the accuracy budget is timed on the build machine at batch 1 and
at the serving batch, each with the cores this process may use, the same way for every
runtime (:func:`~mmship.evaluation.timing.median_latency_ms`: one warm-up call, a few
timed calls). The fastest at the serving batch is chosen per tower (batch 1 breaks ties);
the figures go into the manifest with the choice.

The variants are timed one after the other, and a shared machine's speed drifts between
minutes (30-50 % on the VM of benchmarks/README.md), so the variants within
:data:`REMATCH_WITHIN` of the fastest are timed again together, head to head
(:func:`head_to_head`: calls alternating, so a drift falls on all alike). Those within
:data:`TIE_WITHIN` of the fastest there are equally fast: the most accurate is chosen, so
that two builds of one model on one machine choose alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmship.core.specs import ExportedGraph
from mmship.evaluation.feeds import example_feeds
from mmship.evaluation.sessions import GraphSessions, session_for
from mmship.evaluation.timing import median_latency_ms

#: Variants at most this factor slower than the fastest (timed one after the other) are
#: timed again with it, head to head.
REMATCH_WITHIN = 1.25
#: Head to head, variants at most this factor slower than the fastest are as fast as it
#: (accuracy decides).
TIE_WITHIN = 1.03
#: Rounds of the head-to-head timing; each round calls a, b, c, c, b, a at the serving batch.
REMATCH_ROUNDS = 3

#: ``[fastest, close runners-up...] -> [ms per call of each]``, timed at the serving batch together.
Rematch = Callable[[list[ExportedGraph]], list[float]]


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


def head_to_head(
    graphs: list[ExportedGraph], batch_size: int, rounds: int = REMATCH_ROUNDS, sessions: GraphSessions | None = None
) -> list[float]:
    """Median ms per call of each of ``graphs`` at ``batch_size``, timed alternately (after
    a warm-up call each, every round calls them in order and then in reverse: a, b, b, a):
    a drift of the machine's speed during the timing falls on all alike."""
    runs = [(session_for(g, sessions), example_feeds(g.inputs, batch=batch_size)) for g in graphs]
    for session, feeds in runs:
        session.run(feeds)
    times: list[list[float]] = [[] for _ in graphs]
    order = [*range(len(graphs)), *reversed(range(len(graphs)))]
    for _ in range(rounds):
        for which in order:
            session, feeds = runs[which]
            start = time.perf_counter()
            session.run(feeds)
            times[which].append((time.perf_counter() - start) * 1000)
    return [round(float(np.median(t)), 3) for t in times]


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


def _label(graph: ExportedGraph) -> str:
    return f"{graph.runtime} {graph.precision}"


def _settle(
    ranked: list[tuple[str, dict[str, float]]], tower: str, graphs: dict[str, list[ExportedGraph]],
    accuracy: dict[str, Any], rematch: Rematch | None,
) -> tuple[str, float, str]:
    """The key of the tower's choice among ``ranked`` (fastest first, timed one after the
    other), its ms at the serving batch and why."""
    def graph(key: str) -> ExportedGraph:
        return next(g for g in graphs[key] if g.name == tower)

    key, figures = ranked[0]
    batch = int(figures["batch_size"])
    if len(ranked) == 1:
        return key, figures["batch"], f"the one verified variant timed (batch {batch})"
    reason = f"fastest of {len(ranked)} verified variants at batch {batch}"
    close = [item for item in ranked if item[1]["batch"] <= REMATCH_WITHIN * figures["batch"]]
    if rematch is None or len(close) == 1:
        other_key, other = ranked[1]
        return key, figures["batch"], reason + (
            f" ({figures['batch']:.1f} ms; next {_label(graph(other_key))} {other['batch']:.1f} ms)")
    keys = [k for k, _ in close]
    measured = dict(zip(keys, rematch([graph(k) for k in keys])))
    timed = ("; one after the other " + ", ".join(f"{_label(graph(k))} {f['batch']:.1f} ms" for k, f in close)
             + "; head to head " + ", ".join(f"{_label(graph(k))} {measured[k]:.1f} ms" for k in keys))
    fastest = min(keys, key=lambda k: measured[k])
    tied = [k for k in keys if measured[k] <= TIE_WITHIN * measured[fastest]]
    if len(tied) > 1:
        cosine = {k: graph_accuracy(accuracy, k, graph(k)).get("mean_cosine", 0.0) for k in tied}
        winner = max(tied, key=lambda k: (cosine[k], -measured[k]))
        others = [k for k in tied if k != winner]
        more = all(cosine[winner] > cosine[k] for k in others)
        return winner, measured[winner], (
            f"as fast as {', '.join(_label(graph(k)) for k in others)} at batch {batch} (within {TIE_WITHIN - 1:.0%} "
            f"head to head) and {'more' if more else 'as'} accurate (mean cosine {cosine[winner]:.5f} vs "
            + ", ".join(f"{cosine[k]:.5f}" for k in others) + ")" + timed)
    if fastest != key:
        return fastest, measured[fastest], (
            f"fastest head to head of {len(ranked)} verified variants at batch {batch}" + timed)
    return key, measured[key], reason + timed


def choose_fastest(
    graphs: dict[str, list[ExportedGraph]], timing: dict[str, dict[str, dict[str, float]]], accuracy: dict[str, Any],
    rematch: Rematch | None = None,
) -> dict[str, dict[str, Any]]:
    """Per tower, the timed variant fastest at the serving batch (then at batch 1), with
    its figures and the runner-up in ``reason``. With ``rematch``, the variants within
    :data:`REMATCH_WITHIN` of the fastest are timed again with it head to head, which
    decides; of those as fast as the fastest there (:data:`TIE_WITHIN`), the most accurate
    is chosen."""
    chosen: dict[str, dict[str, Any]] = {}
    towers = {g.name: g for items in graphs.values() for g in items}
    for tower in towers:
        measured = [(key, t[tower]) for key, t in timing.items() if tower in t]
        if not measured:
            continue
        ranked = sorted(measured, key=lambda item: (item[1]["batch"], item[1]["batch1"]))
        key, batch_ms, reason = _settle(ranked, tower, graphs, accuracy, rematch)
        figures = timing[key][tower]
        graph = next(g for g in graphs[key] if g.name == tower)
        chosen[tower] = {
            "runtime": graph.runtime, "precision": graph.precision,
            "batch1_ms": figures["batch1"], "batch_ms": batch_ms, "batch_size": int(figures["batch_size"]),
            "mean_cosine": graph_accuracy(accuracy, key, graph).get("mean_cosine"), "reason": reason,
        }
    return chosen
