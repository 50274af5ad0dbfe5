"""The quantize and optimize stages through their hooks, on a tiny exported CLIP."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from mmship.core.adapter import LoadOptions
from mmship.core.manager import get_plugin_manager
from mmship.core.model_source import read_hf_config
from mmship.core.stages import (
    BuildContext,
    ExportOptions,
    OptimizeOptions,
    QuantizeOptions,
)
from mmship.evaluation.compare import compare
from mmship.evaluation.feeds import example_feeds
from mmship.ort import make_session, run
from tests.helpers.tiny_models import TINY_IMAGE_SIZE


@pytest.fixture(scope="module")
def exported(tiny_clip_dir, tmp_path_factory):
    from mmship.core.manager import reset_plugin_manager

    reset_plugin_manager()
    manager = get_plugin_manager()
    adapter = manager.adapters().detect(read_hf_config(tiny_clip_dir))(read_hf_config(tiny_clip_dir))
    model = adapter.load_model(tiny_clip_dir, LoadOptions())
    work = tmp_path_factory.mktemp("graphs")
    graphs = manager.hook.mmship_export(adapter=adapter, model=model, workdir=work, options=ExportOptions())
    preprocess = manager.hook.mmship_align_preprocess(adapter=adapter, source=tiny_clip_dir)
    context = BuildContext(adapter=adapter, preprocess=preprocess, processor_dir=tiny_clip_dir, workdir=work)
    return {g.name: g for g in graphs}, work, context


def outputs(graph, batch=3):
    feeds = example_feeds(graph.inputs, batch=batch)
    return run(make_session(graph.path), feeds)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_quantize_keeps_fp32_io_and_close_outputs(exported, precision):
    graphs, work, context = exported
    hook = get_plugin_manager().hook
    for graph in graphs.values():
        result = hook.mmship_quantize(graph=graph, precision=precision, workdir=work, options=QuantizeOptions(), context=context)
        assert result.precision == precision and result.path.exists() and result.path != graph.path
        model = onnx.load(str(result.path))
        assert {i.type.tensor_type.elem_type for i in model.graph.input if i.name == "pixel_values"} <= {onnx.TensorProto.FLOAT}
        assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in model.graph.output)
        reference, candidate = outputs(graph), outputs(result)
        for name in reference:
            assert compare(reference[name], candidate[name])["min_cosine"] > 0.99


def test_int8_static_and_per_channel(exported, tmp_path):
    graphs, work, context = exported
    graph = graphs["image"]
    np.savez(tmp_path / "image.npz", pixel_values=example_feeds(graph.inputs, batch=4)["pixel_values"])
    options = QuantizeOptions(mode="static", per_channel=True, calibration_dir=tmp_path)
    result = get_plugin_manager().hook.mmship_quantize(graph=graph, precision="int8", workdir=work, options=options, context=context)
    assert "static" in result.notes[0] and "per-channel" in result.notes[0]
    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert compare(outputs(graph)["image_embeds"], outputs(result)["image_embeds"])["min_cosine"] > 0.98


def test_static_int8_calibrates_on_the_probe_set_when_no_folder_is_given(exported):
    """Calibration belongs to quantize: without a folder, the probe set's real photos go
    through the build's aligned preprocessing into calibration feeds."""
    graphs, work, context = exported
    graph = graphs["image"]
    result = get_plugin_manager().hook.mmship_quantize(
        graph=graph, precision="int8", workdir=work, options=QuantizeOptions(mode="static"), context=context
    )
    written = np.load(context.workdir / "calibration" / "image.npz")
    assert written["pixel_values"].shape[0] >= 6 and written["pixel_values"].shape[1:] == (3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert "static" in result.notes[0]
    assert compare(outputs(graph)["image_embeds"], outputs(result)["image_embeds"])["min_cosine"] > 0.98


def test_unknown_precision_is_declined(exported):
    graphs, work, context = exported
    assert get_plugin_manager().hook.mmship_quantize(
        graph=graphs["text"], precision="int4", workdir=work, options=QuantizeOptions(), context=context
    ) is None


def test_optimize_measures_and_reports(exported):
    graphs, work, context = exported
    hook = get_plugin_manager().hook
    graph = graphs["text"]
    unchanged = hook.mmship_optimize(graph=graph, workdir=work, options=OptimizeOptions(level="none"))
    assert unchanged.path == graph.path and "optimize" not in unchanged.report
    result = hook.mmship_optimize(graph=graph, workdir=work, options=OptimizeOptions(level="extended", min_speedup=1.0))
    figures = result.report["optimize"]
    assert figures["latency_ms_before"] > 0 and figures["latency_ms_after"] > 0
    assert figures["applied"] == (figures["speedup"] >= 1.0)
    assert (result.path != graph.path) == figures["applied"]
    never = hook.mmship_optimize(graph=graph, workdir=work, options=OptimizeOptions(level="extended", min_speedup=1e9))
    assert never.path == graph.path and never.report["optimize"]["applied"] is False
    np.testing.assert_allclose(outputs(result)["text_embeds"], outputs(graph)["text_embeds"], rtol=1e-3, atol=1e-4)


def test_validate_hook_reports_batches_accuracy_and_refuses_a_loss_over_budget(exported):
    from mmship.core.errors import BuildError
    from mmship.core.stages import ValidateOptions

    graphs, work, context = exported
    hook = get_plugin_manager().hook
    int8 = [
        hook.mmship_quantize(graph=g, precision="int8", workdir=work, options=QuantizeOptions(), context=context)
        for g in graphs.values()
    ]
    built = {"fp32": list(graphs.values()), "int8": int8}
    figures = hook.mmship_validate(graphs=built, context=context, options=ValidateOptions(batch_sizes=(1, 3)))
    assert set(figures) >= {"batches", "accuracy", "text_padding"}
    assert figures["batches"]["image.int8"]["batch3"]["image_embeds"][0] == 3
    assert figures["accuracy"]["fp32"]["accuracy_loss"] == 0.0
    assert 0.0 <= figures["accuracy"]["int8"]["accuracy_loss"] < 0.05
    with pytest.raises(BuildError, match="int8 loses"):
        hook.mmship_validate(graphs=built, context=context, options=ValidateOptions(batch_sizes=(1,), max_accuracy_loss=0.0))
