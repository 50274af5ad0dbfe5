"""The build's choice of a variant per tower: the fastest at the serving batch; a close
runner-up timed again head to head (calls alternating, so a drift of the machine's speed
falls on both), and equally fast variants decided by accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmship.core.specs import ExportedGraph, TensorSpec
from mmship.evaluation import sessions as sessions_module
from mmship.evaluation import variants as variants_module
from mmship.evaluation.sessions import GraphSessions
from mmship.evaluation.variants import REMATCH_ROUNDS, REMATCH_WITHIN, TIE_WITHIN, choose_fastest, head_to_head

OUTPUT = TensorSpec(name="text_embeds", dtype="float32", shape=[-1, 4], modality="text")
INPUT = TensorSpec(name="input_ids", dtype="int64", shape=[-1, -1], modality="text")


def _graph(runtime: str, precision: str) -> ExportedGraph:
    return ExportedGraph(
        name="text", path=Path(f"text.{runtime}-{precision}.xml"), runtime=runtime, precision=precision,
        inputs=[INPUT], outputs=[OUTPUT],
    )


GRAPHS = {"openvino-int8": [_graph("openvino", "int8")], "openvino-bf16": [_graph("openvino", "bf16")]}


def _timing(int8_ms: float, bf16_ms: float) -> dict[str, dict[str, dict[str, float]]]:
    return {
        "openvino-int8": {"text": {"batch1": 2.0, "batch": int8_ms, "batch_size": 16}},
        "openvino-bf16": {"text": {"batch1": 2.0, "batch": bf16_ms, "batch_size": 16}},
    }


def _accuracy(int8_cosine: float, bf16_cosine: float) -> dict:
    return {key: {"outputs": {"text_embeds": {"mean_cosine": c, "min_cosine": c}}}
            for key, c in (("openvino-int8", int8_cosine), ("openvino-bf16", bf16_cosine))}


class Rematch:
    """A head-to-head timing that answers given figures and records what it was asked."""

    def __init__(self, *figures: float) -> None:
        self.figures = list(figures)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, close: list[ExportedGraph]) -> list[float]:
        self.calls.append(tuple(g.precision for g in close))
        return self.figures[: len(close)]


def test_a_runner_up_far_behind_is_not_timed_again():
    rematch = Rematch(1.0, 1.0)
    chosen = choose_fastest(GRAPHS, _timing(40.0, 40.0 * REMATCH_WITHIN + 1), _accuracy(0.999, 0.9999), rematch)
    assert rematch.calls == []
    assert chosen["text"]["precision"] == "int8" and chosen["text"]["batch_ms"] == 40.0
    assert "next openvino bf16 51.0 ms" in chosen["text"]["reason"]


def test_a_close_runner_up_faster_head_to_head_is_chosen():
    # one after the other bf16 looked 10 % slower (the machine slowed down while it was timed)
    rematch = Rematch(41.0, 36.0)
    chosen = choose_fastest(GRAPHS, _timing(40.0, 44.0), _accuracy(0.999, 0.999), rematch)
    assert rematch.calls == [("int8", "bf16")]  # the fastest first, the runner-up second
    text = chosen["text"]
    assert (text["runtime"], text["precision"], text["batch_ms"]) == ("openvino", "bf16", 36.0)
    assert "fastest head to head" in text["reason"]
    assert "head to head openvino int8 41.0 ms, openvino bf16 36.0 ms" in text["reason"]
    assert text["batch1_ms"] == 2.0 and text["batch_size"] == 16


def test_the_fastest_stays_chosen_when_head_to_head_confirms_it():
    rematch = Rematch(40.0, 45.0)
    chosen = choose_fastest(GRAPHS, _timing(40.0, 42.0), _accuracy(0.999, 0.9999), rematch)
    assert chosen["text"]["precision"] == "int8" and chosen["text"]["batch_ms"] == 40.0
    assert "head to head openvino int8 40.0 ms, openvino bf16 45.0 ms" in chosen["text"]["reason"]


@pytest.mark.parametrize("int8_ms, bf16_ms", [(40.0, 40.0 * TIE_WITHIN), (40.0 * TIE_WITHIN, 40.0)])
def test_equally_fast_variants_are_decided_by_accuracy_whichever_is_ahead(int8_ms, bf16_ms):
    """Within TIE_WITHIN head to head, the more accurate variant is chosen, so two builds on
    one machine choose alike whichever variant the drift favoured."""
    chosen = choose_fastest(GRAPHS, _timing(40.0, 41.0), _accuracy(0.9994, 0.99996), Rematch(int8_ms, bf16_ms))
    assert chosen["text"]["precision"] == "bf16" and chosen["text"]["batch_ms"] == bf16_ms
    assert "more accurate (mean cosine 0.99996 vs 0.99940)" in chosen["text"]["reason"]
    chosen = choose_fastest(GRAPHS, _timing(41.0, 40.0), _accuracy(0.99996, 0.9994), Rematch(bf16_ms, int8_ms))
    assert chosen["text"]["precision"] == "int8"  # the same rule from the other side


def test_every_variant_close_to_the_fastest_joins_the_rematch():
    graphs = {**GRAPHS, "int8": [_graph("onnxruntime", "int8")], "fp32": [_graph("onnxruntime", "fp32")]}
    timing = {**_timing(40.0, 44.0), "int8": {"text": {"batch1": 2.0, "batch": 49.0, "batch_size": 16}},
              "fp32": {"text": {"batch1": 2.0, "batch": 80.0, "batch_size": 16}}}
    accuracy = {**_accuracy(0.999, 0.9999), "int8": {"outputs": {"text_embeds": {"mean_cosine": 0.998, "min_cosine": 0.99}}}}
    rematch = Rematch(45.0, 47.0, 38.0)  # the third one timed one after the other is the fastest side by side
    chosen = choose_fastest(graphs, timing, accuracy, rematch)
    assert rematch.calls == [("int8", "bf16", "int8")]  # openvino int8, bf16, onnxruntime int8; fp32 far behind
    text = chosen["text"]
    assert (text["runtime"], text["precision"], text["batch_ms"]) == ("onnxruntime", "int8", 38.0)
    # three within 3 % side by side: the most accurate of them
    chosen = choose_fastest(graphs, timing, accuracy, Rematch(40.0, 41.0, 40.5))
    assert chosen["text"]["precision"] == "bf16" and chosen["text"]["batch_ms"] == 41.0
    assert "as fast as openvino int8, onnxruntime int8" in chosen["text"]["reason"]


def test_one_timed_variant_is_chosen_without_a_rematch():
    rematch = Rematch(1.0, 1.0)
    timing = {"openvino-int8": _timing(40.0, 40.0)["openvino-int8"]}
    chosen = choose_fastest({"openvino-int8": GRAPHS["openvino-int8"]}, timing, _accuracy(0.999, 0.999), rematch)
    assert rematch.calls == [] and chosen["text"]["precision"] == "int8"
    assert chosen["text"]["reason"] == "the one verified variant timed (batch 16)"


class Clock:
    """A machine whose speed drifts: every call costs ``slowdown`` more than the one before."""

    def __init__(self, slowdown: float) -> None:
        self.now, self.calls, self.slowdown = 0.0, 0, slowdown

    def perf_counter(self) -> float:
        return self.now

    def spend(self, ms: float) -> None:
        self.now += ms / 1000 * (1 + self.slowdown * self.calls)
        self.calls += 1


class Session:
    def __init__(self, name: str, ms: float, clock: Clock, log: list[str]) -> None:
        self.name, self.ms, self.clock, self.log = name, ms, clock, log

    def run(self, feeds):
        assert feeds["input_ids"].shape[0] == 16  # timed at the serving batch
        self.log.append(self.name)
        self.clock.spend(self.ms)
        return {}


def test_head_to_head_alternates_so_a_drift_falls_on_both(monkeypatch):
    clock, log = Clock(slowdown=0.05), []
    costs = {"int8": 10.0, "bf16": 10.5, "fp32": 20.0}  # int8 is faster; the machine slows 5 % per call
    monkeypatch.setattr(variants_module, "time", clock)
    monkeypatch.setattr(
        sessions_module, "load_graph", lambda graph, threads=None: Session(graph.precision, costs[graph.precision], clock, log)
    )
    int8, bf16 = GRAPHS["openvino-int8"][0], GRAPHS["openvino-bf16"][0]
    first_ms, second_ms = head_to_head([bf16, int8], 16, sessions=GraphSessions())
    assert log[:2] == ["bf16", "int8"]  # a warm-up call each
    assert log[2:] == ["bf16", "int8", "int8", "bf16"] * REMATCH_ROUNDS
    assert first_ms > second_ms  # bf16 is measured slower although it went first
    log.clear()
    head_to_head([int8, bf16, _graph("onnxruntime", "fp32")], 16, rounds=1, sessions=GraphSessions())
    assert log == ["int8", "bf16", "fp32"] + ["int8", "bf16", "fp32", "fp32", "bf16", "int8"]  # in order, then reversed
    # the control: timed one after the other (four calls each, bf16 first) on a machine
    # drifting the same way, int8 comes out slower: the order is wrong
    clock.now, clock.calls = 0.0, 0
    sequential = {}
    for graph in (bf16, int8):
        times = []
        for _ in range(4):
            start = clock.perf_counter()
            clock.spend(costs[graph.precision])
            times.append(clock.perf_counter() - start)
        sequential[graph.precision] = sorted(times)[1:3]
    assert sum(sequential["int8"]) > sum(sequential["bf16"])
