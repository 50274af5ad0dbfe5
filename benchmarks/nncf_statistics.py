"""NNCF's calibration statistics in the graph or in Python: time and result, A/B in one run.

The build calls ``nncf.quantize`` with ``inplace_statistics=False`` (see docs/runtimes.md).
This script quantizes the fp32 towers of a built bundle both ways, alternating, the towers
in two threads as the build runs them, and prints per round: NNCF's wall time for both
towers, the compile time of the largest graph NNCF compiles (the statistics graph), and
the largest difference between the two int8 graphs' answers on the probe set (0.0: the
same int8 graph).

    .venv/bin/python benchmarks/build_time.py --work .bench --only named   # makes .bench/bundle-named
    .venv/bin/python benchmarks/nncf_statistics.py --bundle .bench/bundle-named --rounds 3
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def tower_inputs(bundle, tower: str) -> tuple[str, dict[str, np.ndarray]]:
    """The fp32 onnxruntime graph file of ``tower`` and its probe-set feeds."""
    from mmship.evaluation.feeds import probe_feeds

    m = bundle.manifest
    graph = next(g for g in m.graphs if g.name == tower and g.runtime == "onnxruntime" and g.precision == "fp32")
    inputs = [s for s in m.inputs if s.name in graph.inputs]
    return str(bundle.path(graph.file)), probe_feeds(inputs, m.preprocess, bundle.path("processor"))


def quantize_towers(towers: dict[str, tuple[str, dict]], inplace: bool) -> tuple[float, float, dict]:
    """Both towers quantized in threads: (wall s, largest compile s, {tower: int8 answers})."""
    import openvino as ov

    from mmship.plugins.runtimes.openvino import core
    from mmship.plugins.stages.openvino_variants import import_nncf

    nncf = import_nncf()
    compiles: list[tuple[int, float]] = []
    real_compile = ov.Core.compile_model

    def timed_compile(self, model, *args, **kwargs):
        start = time.perf_counter()
        compiled = real_compile(self, model, *args, **kwargs)
        compiles.append((len(model.get_ops()), time.perf_counter() - start))
        return compiled

    answers: dict[str, np.ndarray] = {}

    def one(tower: str) -> None:
        path, feeds = towers[tower]
        names = list(feeds)
        samples = [{n: feeds[n][i : i + 1] for n in names} for i in range(len(feeds[names[0]]))]
        quantized = nncf.quantize(
            core().read_model(path), nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(samples), advanced_parameters=nncf.AdvancedQuantizationParameters(inplace_statistics=inplace),
        )
        answers[tower] = core().compile_model(quantized, "CPU")(feeds)[0]

    ov.Core.compile_model = timed_compile
    try:
        start = time.perf_counter()
        threads = [threading.Thread(target=one, args=(tower,)) for tower in towers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    finally:
        ov.Core.compile_model = real_compile
    return wall, max(seconds for _, seconds in compiles), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle with fp32 onnxruntime graphs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from mmship.core.bundle import Bundle

    logging.getLogger("nncf").setLevel(logging.ERROR)
    bundle = Bundle.load(args.bundle, verify=False)
    towers = {name: tower_inputs(bundle, name) for name in ("image", "text")}
    print("| round | statistics | NNCF both towers s | largest compile s | max abs diff in-graph vs Python |")
    print("|---|---|---|---|---|")
    for round_ in range(1, args.rounds + 1):
        results = {inplace: quantize_towers(towers, inplace) for inplace in (True, False)}
        diff = max(float(np.abs(results[True][2][t] - results[False][2][t]).max()) for t in towers)
        for inplace, (wall, compile_s, _) in results.items():
            where = "in the graph (NNCF's default)" if inplace else "in Python (the build's)"
            print(f"| {round_} | {where} | {wall:.1f} | {compile_s:.1f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
