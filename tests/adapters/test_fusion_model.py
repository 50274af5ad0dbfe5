"""The fusion model itself: a PreTrainedModel that round-trips through save/from_pretrained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch  # noqa: E402

from mmship.adapters.fusion import FusionAdapter  # noqa: E402
from mmship.adapters.fusion_model import (  # noqa: E402
    MmshipFusionConfig,
    MmshipFusionModel,
    register_auto_classes,
)
from mmship.core.adapter import LoadOptions  # noqa: E402
from mmship.core.errors import DimensionMismatchError  # noqa: E402
from tests.helpers.tiny_models import TINY_FUSION, make_tiny_fusion  # noqa: E402

KEYS = ("fusion_input_dim", "text_config.hidden_size", "vision_config.hidden_size")


def _inputs():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (2, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return ids, torch.randn(2, 3, 32, 32, generator=generator), mask


def test_config_declares_modalities_and_head_input() -> None:
    config = MmshipFusionConfig(**TINY_FUSION)
    assert config.model_type == "mmship-fusion"
    assert type(config.text_config).__name__ == "BertConfig"
    assert type(config.vision_config).__name__ == "ViTConfig"
    assert config.input_modalities == ["text", "image"]
    assert config.fusion_input_dim == config.concat_dim == 32 + 48


def test_seed_shape_defaults() -> None:
    config = MmshipFusionConfig()
    assert (config.text_config.hidden_size, config.vision_config.hidden_size) == (768, 768)
    assert (config.fusion_input_dim, config.fusion_dim) == (1536, 256)


def test_save_and_from_pretrained_roundtrip(tiny_fusion_dir: Path) -> None:
    assert (tiny_fusion_dir / "model.safetensors").is_file()
    assert not list(tiny_fusion_dir.glob("*.py"))  # no remote code shipped
    saved = json.loads((tiny_fusion_dir / "config.json").read_text())
    assert saved["architectures"] == ["MmshipFusionModel"]
    model = MmshipFusionModel.from_pretrained(tiny_fusion_dir, use_safetensors=True).eval()
    again = FusionAdapter(saved).load_model(tiny_fusion_dir, LoadOptions(trust_remote_code=False))
    ids, pixels, mask = _inputs()
    with torch.no_grad():
        first = model(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        second = again(input_ids=ids, pixel_values=pixels, attention_mask=mask)
    assert first.fused_embeds.shape == (2, 16)
    assert first.text_embeds.shape == (2, 32) and first.image_embeds.shape == (2, 48)
    torch.testing.assert_close(first.fused_embeds, second.fused_embeds)


def test_save_roundtrip_is_exact(tmp_path: Path) -> None:
    folder = make_tiny_fusion(tmp_path / "a", seed=3)
    original = MmshipFusionModel.from_pretrained(folder).eval()
    original.save_pretrained(tmp_path / "b")
    reloaded = MmshipFusionModel.from_pretrained(tmp_path / "b").eval()
    for (name, a), (_, b) in zip(original.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_auto_classes_after_registration(tiny_fusion_dir: Path) -> None:
    from transformers import AutoConfig, AutoModel

    register_auto_classes()
    register_auto_classes()  # idempotent
    assert isinstance(AutoConfig.from_pretrained(tiny_fusion_dir), MmshipFusionConfig)
    assert isinstance(AutoModel.from_pretrained(tiny_fusion_dir), MmshipFusionModel)


def test_mismatched_config_fails_naming_both_numbers() -> None:
    with pytest.raises(DimensionMismatchError) as exc:
        MmshipFusionConfig(**TINY_FUSION, fusion_input_dim=1536)
    message = str(exc.value)
    for part in ("1536", "80", "32", "48", *KEYS):
        assert part in message, message


def test_make_tiny_fusion_with_mismatched_head_fails(tmp_path: Path) -> None:
    with pytest.raises(DimensionMismatchError, match="1536"):
        make_tiny_fusion(tmp_path, fusion_input_dim=1536)


def test_from_pretrained_surfaces_the_mismatch(tiny_fusion_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_fusion_dir, tmp_path / "fusion"))
    config = json.loads((folder / "config.json").read_text())
    config["vision_config"]["hidden_size"] = 64  # the head was built for 48
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(DimensionMismatchError) as exc:
        FusionAdapter(config).load_model(folder, LoadOptions())
    message = str(exc.value)
    for part in ("80", "96", "64", *KEYS):
        assert part in message, message
