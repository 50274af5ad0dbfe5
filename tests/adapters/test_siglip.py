"""The built-in ``siglip`` adapter: detection, dimension rule, export wrappers, sigmoid scoring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmship.adapters.scoring import SIGLIP_INIT_BIAS
from mmship.adapters.siglip import SiglipAdapter
from mmship.core.adapter import LoadOptions
from mmship.core.errors import DimensionMismatchError
from mmship.core.manager import get_plugin_manager
from mmship.core.model_source import read_hf_config, read_weight_shapes
from mmship.core.specs import ScoringSpec
from mmship.scoring import Scorer

ATOL = 1e-5


@pytest.fixture(scope="module")
def siglip(tiny_siglip_dir: Path):
    adapter = SiglipAdapter(read_hf_config(tiny_siglip_dir))
    return adapter, adapter.load_model(tiny_siglip_dir, LoadOptions())


def test_siglip_is_a_builtin_and_detected(tiny_siglip_dir: Path) -> None:
    adapters = get_plugin_manager().adapters()
    assert adapters.owner("siglip") == "adapter-siglip"
    assert adapters.detect(read_hf_config(tiny_siglip_dir)).name == "siglip"
    assert adapters.detect({"architectures": ["SiglipModel"]}).name == "siglip"


def test_specs_fix_the_text_length_and_take_no_mask(tiny_siglip_dir: Path) -> None:
    adapter = SiglipAdapter(read_hf_config(tiny_siglip_dir))
    assert [(s.name, s.shape) for s in adapter.input_specs()] == [("pixel_values", [-1, 3, 32, 32]), ("input_ids", [-1, 16])]
    assert [(s.name, s.shape) for s in adapter.output_specs()] == [("image_embeds", [-1, 32]), ("text_embeds", [-1, 32])]
    adapter.check_dimensions(read_weight_shapes(tiny_siglip_dir))
    example = SiglipAdapter.from_example()
    assert example.max_text_length == 64 and example.image_dim == example.text_dim == 768


def test_dimension_rule_names_both_widths() -> None:
    config = {"model_type": "siglip", "text_config": {"hidden_size": 40, "projection_size": 24},
              "vision_config": {"hidden_size": 32, "image_size": 32}}
    with pytest.raises(DimensionMismatchError) as caught:
        SiglipAdapter(config).check_dimensions()
    message = str(caught.value)
    assert "24" in message and "32" in message and "text_config.projection_size" in message
    shapes = {"text_model.head.weight": [30, 40]}
    with pytest.raises(DimensionMismatchError, match="30"):
        SiglipAdapter(config | {"text_config": {"hidden_size": 40, "projection_size": 32}}).check_dimensions(shapes)


def test_wrappers_match_get_features_and_forward(siglip) -> None:
    adapter, model = siglip
    items = {i.graph.name: i for i in adapter.export_modules(model, batch_size=3)}
    (pixels,) = items["image"].example_inputs
    (ids,) = items["text"].example_inputs
    assert ids.shape == (3, 16) and int(ids[-1, -1]) == model.config.text_config.pad_token_id
    with torch.no_grad():
        image = items["image"].module(pixels)
        text = items["text"].module(ids)
        image_ref = model.get_image_features(pixel_values=pixels).pooler_output
        text_ref = model.get_text_features(input_ids=ids).pooler_output
        out = model(input_ids=ids, pixel_values=pixels)
    torch.testing.assert_close(image, image_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(text, text_ref, atol=ATOL, rtol=0)
    # scored with the adapter's scoring, they are SiglipModel.forward's logits
    scorer = Scorer(adapter.scoring(model))
    np.testing.assert_allclose(scorer.logits(image.numpy(), text.numpy()), out.logits_per_image.numpy(), atol=1e-4)
    probs = scorer.probabilities(scorer.logits(image.numpy(), text.numpy()))
    np.testing.assert_allclose(probs, torch.sigmoid(out.logits_per_image).numpy(), atol=1e-5)


def test_scoring_is_sigmoid_from_the_weights(siglip, tiny_siglip_dir: Path) -> None:
    adapter, model = siglip
    expected = ScoringSpec(
        kind="sigmoid", logit_scale=math.exp(float(model.logit_scale.detach())), logit_bias=float(model.logit_bias.detach())
    )
    assert adapter.scoring(model) == expected
    assert adapter.scoring(folder=tiny_siglip_dir).logit_scale == pytest.approx(expected.logit_scale)
    assert adapter.scoring(folder=tiny_siglip_dir).logit_bias == pytest.approx(expected.logit_bias)
    assert expected.logit_bias == pytest.approx(-1.5)  # the tiny model's, not the init value
    bare = adapter.scoring()
    assert bare.kind == "sigmoid" and bare.logit_scale == pytest.approx(10.0) and bare.logit_bias == SIGLIP_INIT_BIAS
