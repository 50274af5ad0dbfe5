"""The towers of one variant are built in threads (``mmship_quantize`` hookspec): both
calls are in flight at once, results keep the towers' order, and a failure is the
variant's (left out when optional, raised when required)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmship.core.errors import BuildError
from mmship.core.pipeline import BuildRequest, _build_variant
from mmship.core.specs import ExportedGraph, TensorSpec
from mmship.core.variants import Variant


def _graph(name: str) -> ExportedGraph:
    spec = TensorSpec(name="x", dtype="float32", shape=[-1, 3], modality="image")
    return ExportedGraph(name=name, path=Path(f"{name}.onnx"), inputs=[spec], outputs=[spec])


class Quantizer:
    """A hook whose calls wait for each other: sequential calls would break the barrier."""

    def __init__(self, fail: str | None = None) -> None:
        self.barrier = threading.Barrier(2, timeout=10)
        self.threads: set[str] = set()
        self.fail = fail

    def mmship_quantize(self, graph, precision, workdir, options, context):
        self.threads.add(threading.current_thread().name)
        self.barrier.wait()  # raises BrokenBarrierError unless the other tower is in flight too
        if graph.name == self.fail:
            raise BuildError(f"cannot build {graph.name}", hint="none")
        return graph.model_copy(update={"precision": precision, "runtime": graph.runtime})


def _build(hook: Quantizer, variant: Variant):
    request = BuildRequest(source="x", out=Path("out"))
    return _build_variant(hook, variant, [_graph("image"), _graph("text")], Path("."), request, SimpleNamespace())


def test_the_towers_of_a_variant_are_quantized_at_the_same_time_in_order():
    hook = Quantizer()
    result = _build(hook, Variant("openvino", "int8"))
    assert [(g.name, g.runtime, g.precision) for g in result] == [("image", "openvino", "int8"), ("text", "openvino", "int8")]
    assert len(hook.threads) == 2


def test_a_tower_that_fails_leaves_an_optional_variant_out():
    assert _build(Quantizer(fail="text"), Variant("openvino", "int8", required=False)) == "cannot build text"


def test_a_tower_that_fails_stops_a_required_variant():
    with pytest.raises(BuildError, match="cannot build image"):
        _build(Quantizer(fail="image"), Variant("openvino", "int8"))


def test_ctrl_c_does_not_wait_for_a_tower_still_quantizing(tmp_path):
    """A Ctrl-C reaches the build at once, and the process ends without joining a tower's
    thread that is still busy (a thread pool's workers are joined at exit: 57 s measured)."""
    import subprocess
    import sys
    import time

    script = tmp_path / "interrupted.py"
    script.write_text(
        "import os, signal, threading, time\n"
        "from mmship.core.threads import in_threads\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C\n"
        "try:\n"
        "    in_threads(lambda seconds: time.sleep(seconds), [60, 60])\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=50)
    assert result.stdout.strip() == "interrupted", result.stderr
    assert time.monotonic() - started < 30  # not the 60 s the towers would take


def test_map_in_threads_keeps_the_order_and_raises_a_failure():
    from mmship.core.threads import map_in_threads

    def square_but_not_two(n: int) -> int:
        if n == 2:
            raise ValueError(f"bad {n}")
        return n * n

    assert map_in_threads(square_but_not_two, [3, 1, 4]) == [9, 1, 16]
    with pytest.raises(ValueError, match="bad 2"):
        map_in_threads(square_but_not_two, [1, 2, 3])
