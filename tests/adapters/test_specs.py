"""What each adapter declares: inputs, outputs, graphs, serving defaults."""

from __future__ import annotations

from pathlib import Path

from mmship.adapters.clip import CLIPAdapter
from mmship.adapters.flava import FLAVAAdapter
from mmship.adapters.fusion import FusionAdapter
from mmship.core.adapter import describe
from mmship.core.model_source import read_hf_config


def _shapes(specs) -> dict[str, list[int]]:
    return {s.name: s.shape for s in specs}


def test_clip_example_is_vit_b32() -> None:
    adapter = CLIPAdapter.from_example()
    inputs = {s.name: s for s in adapter.input_specs()}
    assert inputs["pixel_values"].shape == [-1, 3, 224, 224]
    assert inputs["pixel_values"].layout == "NCHW"
    assert inputs["pixel_values"].dtype == "float32"
    assert inputs["pixel_values"].modality == "image"
    for name in ("input_ids", "attention_mask"):
        assert inputs[name].shape == [-1, -1]
        assert inputs[name].dtype == "int64"
        assert inputs[name].modality == "text"
    assert adapter.max_text_length == 77
    assert _shapes(adapter.output_specs()) == {"image_embeds": [-1, 512], "text_embeds": [-1, 512]}
    assert all(s.modality == "embedding" and s.dtype == "float32" for s in adapter.output_specs())
    graphs = {g.name: (g.inputs, g.outputs) for g in adapter.graph_specs()}
    assert graphs == {
        "image": (["pixel_values"], ["image_embeds"]),
        "text": (["input_ids", "attention_mask"], ["text_embeds"]),
    }
    params = adapter.default_serving_params()
    assert (params.default_batch_size, params.max_batch_size, params.max_delay_ms) == (8, 32, 5)
    assert params.precision == "fp32"
    assert [s.name for s in adapter.inputs_for_modality("text")] == ["input_ids", "attention_mask"]


def test_clip_matches_by_model_type_or_architecture() -> None:
    assert CLIPAdapter.matches({"model_type": "clip"})
    assert CLIPAdapter.matches({"architectures": ["CLIPModel"]})
    assert not CLIPAdapter.matches({"model_type": "flava"})


def test_clip_specs_follow_the_config(tiny_clip_dir: Path) -> None:
    adapter = CLIPAdapter(read_hf_config(tiny_clip_dir))
    assert adapter.spec("pixel_values").shape == [-1, 3, 32, 32]
    assert adapter.spec("image_embeds").shape == [-1, 24]
    assert adapter.spec("text_embeds").shape == [-1, 24]


def test_flava_example_declares_three_graphs() -> None:
    adapter = FLAVAAdapter.from_example()
    assert _shapes(adapter.input_specs()) == {
        "pixel_values": [-1, 3, 224, 224],
        "input_ids": [-1, -1],
        "attention_mask": [-1, -1],
    }
    assert _shapes(adapter.output_specs()) == {
        "image_embeds": [-1, 768],
        "text_embeds": [-1, 768],
        "multimodal_embeds": [-1, 768],
    }
    graphs = {g.name: (g.inputs, g.outputs) for g in adapter.graph_specs()}
    assert graphs["multimodal"] == (["pixel_values", "input_ids", "attention_mask"], ["multimodal_embeds"])
    assert set(graphs) == {"image", "text", "multimodal"}


def test_flava_specs_follow_the_config(tiny_flava_dir: Path) -> None:
    adapter = FLAVAAdapter(read_hf_config(tiny_flava_dir))
    assert adapter.spec("pixel_values").shape == [-1, 3, 32, 32]
    assert adapter.spec("image_embeds").shape == [-1, 24]
    assert adapter.spec("multimodal_embeds").shape == [-1, 48]
    assert adapter.max_text_length == 64


def test_fusion_example_is_the_seed_model() -> None:
    adapter = FusionAdapter.from_example()
    assert _shapes(adapter.input_specs()) == {
        "pixel_values": [-1, 3, 224, 224],
        "input_ids": [-1, -1],
        "attention_mask": [-1, -1],
    }
    assert _shapes(adapter.output_specs()) == {"fused_embeds": [-1, 256]}
    (graph,) = adapter.graph_specs()
    assert (graph.name, graph.inputs, graph.outputs) == (
        "fused",
        ["pixel_values", "input_ids", "attention_mask"],
        ["fused_embeds"],
    )
    assert {s.modality for s in adapter.input_specs()} == {"image", "text"}


def test_fusion_specs_follow_the_config(tiny_fusion_dir: Path) -> None:
    config = read_hf_config(tiny_fusion_dir)
    assert config["input_modalities"] == ["text", "image"]
    assert config["fusion_input_dim"] == 32 + 48
    adapter = FusionAdapter(config)
    assert adapter.spec("fused_embeds").shape == [-1, 16]
    assert adapter.spec("pixel_values").shape == [-1, 3, 32, 32]


def test_describe_every_adapter() -> None:
    for cls in (CLIPAdapter, FLAVAAdapter, FusionAdapter):
        info = describe(cls.from_example())
        assert info["name"] == cls.name
        assert info["inputs"] and info["outputs"] and info["graphs"]
        assert info["serving_params"]["default_batch_size"] <= info["serving_params"]["max_batch_size"]
