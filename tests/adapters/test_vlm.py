"""The vlm adapter: detection, specs, dimension checks, and a real weights-bundle build of a
tiny LLaVA (Llama text + CLIP vision) that loads and generates again from the bundle."""

from __future__ import annotations

import json
import shutil

import pytest

from mmship.adapters.vlm import VLMAdapter
from mmship.core.bundle import Bundle
from mmship.core.errors import DimensionMismatchError
from mmship.core.manager import get_plugin_manager
from mmship.core.model_source import read_hf_config, read_weight_shapes


def test_registered_and_detected_from_config(vlm_folder):
    registry = get_plugin_manager().adapters()
    assert registry.get("vlm") is VLMAdapter
    assert registry.detect(read_hf_config(vlm_folder)) is VLMAdapter
    assert registry.detect({"model_type": "llava_next"}) is VLMAdapter


def test_specs_follow_the_config(vlm_folder):
    adapter = VLMAdapter(read_hf_config(vlm_folder))
    pixel, ids = adapter.input_specs()
    assert (pixel.name, pixel.shape, pixel.modality, pixel.layout) == ("pixel_values", [-1, 3, 32, 32], "image", "NCHW")
    assert (ids.name, ids.dtype, ids.shape, ids.modality) == ("input_ids", "int64", [-1, -1], "text")
    assert [(o.name, o.modality) for o in adapter.output_specs()] == [("generated_text", "text")]
    assert adapter.graph_specs() == [] and adapter.bundle_kind == "weights"
    adapter.check_dimensions(read_weight_shapes(vlm_folder))  # consistent
    example = VLMAdapter.from_example()
    assert example.input_specs()[0].shape == [-1, 3, 336, 336]


def test_projector_input_mismatch_names_both_numbers_and_keys(vlm_folder):
    config = read_hf_config(vlm_folder)
    config["vision_config"]["hidden_size"] = 40
    with pytest.raises(DimensionMismatchError) as info:
        VLMAdapter(config).check_dimensions(read_weight_shapes(vlm_folder))
    message = info.value.message
    assert "32 features" in message and "gives 40" in message
    assert "vision_config.hidden_size" in message and "multi_modal_projector.linear_1.weight" in message


def test_projector_output_mismatch_names_text_hidden(vlm_folder):
    config = read_hf_config(vlm_folder)
    config["text_config"]["hidden_size"] = 64
    with pytest.raises(DimensionMismatchError) as info:
        VLMAdapter(config).check_dimensions(read_weight_shapes(vlm_folder))
    assert "48 features" in info.value.message and "text_config.hidden_size is 64" in info.value.message


def test_multiple_feature_layers_multiply_the_vision_width():
    config = {"model_type": "llava", "vision_feature_layer": [-2, -5], "vision_config": {"hidden_size": 32},
              "text_config": {"hidden_size": 48}}
    shapes = {"multi_modal_projector.linear_1.weight": [48, 32]}
    with pytest.raises(DimensionMismatchError, match="gives 64 .*x 2 vision_feature_layer"):
        VLMAdapter(config).check_dimensions(shapes)
    VLMAdapter(config).check_dimensions({"multi_modal_projector.linear_1.weight": [48, 64]})


def test_image_token_outside_the_vocabulary():
    config = {"model_type": "llava", "image_token_index": 600, "vision_config": {"hidden_size": 32},
              "text_config": {"hidden_size": 48, "vocab_size": 524}}
    with pytest.raises(DimensionMismatchError) as info:
        VLMAdapter(config).check_dimensions()
    assert "600" in info.value.message and "524" in info.value.message
    assert "resize_token_embeddings" in info.value.hint


def test_build_writes_a_weights_bundle(vlm_bundle):
    bundle = Bundle.load(vlm_bundle)  # checksums verified
    m = bundle.manifest
    assert m.adapter == "vlm" and m.graphs == [] and m.precisions == []
    assert [g for g in m.graph_specs] == []
    files = set(m.files)
    assert {"hf/config.json", "hf/model.safetensors", "processor/processor_config.json", "processor/tokenizer.json"} <= files
    assert not any(f.startswith("graphs/") for f in files)
    assert json.loads(bundle.path("hf/config.json").read_text())["model_type"] == "llava"


def test_bundle_hf_folder_loads_and_generates(vlm_bundle):
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    hf = Bundle.load(vlm_bundle).path("hf")
    processor = AutoProcessor.from_pretrained(hf)
    model = LlavaForConditionalGeneration.from_pretrained(hf).eval()
    image = Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype("uint8"))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "a photo of cat"}]}]
    prompt = processor.apply_chat_template(messages)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 32, 32)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2


def test_build_refuses_inconsistent_dimensions(vlm_folder, tmp_path):
    from mmship.core.pipeline import BuildRequest, build

    broken = tmp_path / "broken"
    shutil.copytree(vlm_folder, broken)
    config = json.loads((broken / "config.json").read_text())
    config["vision_config"]["hidden_size"] = 40
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(DimensionMismatchError, match="vision_config.hidden_size"):
        build(BuildRequest(source=str(broken), out=tmp_path / "bundle"))
    assert not (tmp_path / "bundle").exists()
