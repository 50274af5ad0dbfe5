"""The engine: sessions per graph, accelerator choice, checkpoint bundles refused."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from mmship.core.bundle import Bundle
from mmship.core.errors import BundleError, MmshipError
from mmship.serving.engine import Engine, choose_accelerator

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_engine_loads_every_graph_at_the_asked_precision(tiny_clip_bundle):
    engine = Engine(Bundle.load(tiny_clip_bundle), precision="fp32")
    assert set(engine.graphs) == {"image", "text"}
    assert engine.precision == "fp32" and engine.accelerator == "cpu"
    with pytest.raises(BundleError, match="no fp16 graph"):
        Engine(Bundle.load(tiny_clip_bundle), precision="fp16")


def test_asking_for_cuda_uses_it_or_says_how_to_get_it(tiny_clip_bundle):
    if HAS_CUDA:
        assert Engine(Bundle.load(tiny_clip_bundle), accelerator="cuda").accelerator == "cuda"
        return
    with pytest.raises(MmshipError) as info:
        Engine(Bundle.load(tiny_clip_bundle), accelerator="cuda")
    assert "CUDAExecutionProvider" in info.value.message and "onnxruntime-gpu" in info.value.hint


def test_the_bundle_accelerator_is_used_when_present_else_cpu_with_a_note():
    from mmship.plugins.runtimes.onnxruntime import OnnxRuntime

    runtime = OnnxRuntime()
    accelerator, notes = choose_accelerator(None, "cuda", runtime)
    if HAS_CUDA:
        assert (accelerator, notes) == ("cuda", [])
    else:
        assert accelerator == "cpu"
        assert "'cuda'" in notes[0] and "CPU" in notes[0]
    assert choose_accelerator(None, "cpu", runtime) == ("cpu", [])
    assert choose_accelerator("cpu", "tensorrt", runtime) == ("cpu", [])


def test_checkpoint_bundle_is_refused(tmp_path):
    from tests.plugins.targets.bundles import make_weights_bundle

    with pytest.raises(BundleError, match="carries no ONNX graphs"):
        Engine(Bundle.load(make_weights_bundle(tmp_path / "vlm")))
