"""Dimension rules: consistent models pass; a tampered config or checkpoint fails with a
message that names both numbers and the config keys to fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmship.adapters.clip import CLIPAdapter
from mmship.adapters.flava import FLAVAAdapter
from mmship.adapters.fusion import FusionAdapter
from mmship.core.errors import DimensionMismatchError
from mmship.core.model_source import read_hf_config, read_weight_shapes


def _message(exc: pytest.ExceptionInfo[DimensionMismatchError]) -> str:
    return str(exc.value)


def _assert_names(message: str, *parts: object) -> None:
    for part in parts:
        assert str(part) in message, f"{part!r} missing from: {message}"


# --- CLIP -----------------------------------------------------------------------------


def test_clip_consistent_passes(tiny_clip_dir: Path) -> None:
    adapter = CLIPAdapter(read_hf_config(tiny_clip_dir))
    adapter.check_dimensions()
    adapter.check_dimensions(read_weight_shapes(tiny_clip_dir))
    CLIPAdapter.from_example().check_dimensions()


def test_clip_projections_that_disagree(tiny_clip_dir: Path) -> None:
    shapes = read_weight_shapes(tiny_clip_dir)
    shapes["visual_projection.weight"] = [512, 48]
    shapes["text_projection.weight"] = [256, 32]
    with pytest.raises(DimensionMismatchError) as exc:
        CLIPAdapter(read_hf_config(tiny_clip_dir)).check_dimensions(shapes)
    message = _message(exc)
    _assert_names(message, "256", "512", "text_projection", "visual_projection", "projection_dim")
    assert message.startswith("text_projection gives 256-dim text embeddings but visual_projection gives 512-dim")
    assert exc.value.hint


def test_clip_config_projection_dim_tampered(tiny_clip_dir: Path) -> None:
    config = read_hf_config(tiny_clip_dir) | {"projection_dim": 99}
    with pytest.raises(DimensionMismatchError) as exc:
        CLIPAdapter(config).check_dimensions(read_weight_shapes(tiny_clip_dir))
    _assert_names(_message(exc), "99", "24", "projection_dim", "visual_projection.weight")


@pytest.mark.parametrize(
    ("section", "hidden", "weight"),
    [("vision_config", 48, "visual_projection.weight"), ("text_config", 32, "text_projection.weight")],
)
def test_clip_hidden_size_tampered(tiny_clip_dir: Path, section: str, hidden: int, weight: str) -> None:
    config = read_hf_config(tiny_clip_dir)
    config[section] = {**config[section], "hidden_size": 64}
    with pytest.raises(DimensionMismatchError) as exc:
        CLIPAdapter(config).check_dimensions(read_weight_shapes(tiny_clip_dir))
    _assert_names(_message(exc), "64", hidden, f"{section}.hidden_size", weight)


def test_clip_tampered_config_json_on_disk(tiny_clip_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_clip_dir, tmp_path / "clip"))
    config = json.loads((folder / "config.json").read_text())
    config["projection_dim"] = 512
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(DimensionMismatchError) as exc:
        CLIPAdapter(read_hf_config(folder)).check_dimensions(read_weight_shapes(folder))
    _assert_names(_message(exc), "512", "24", "projection_dim")


# --- FLAVA ----------------------------------------------------------------------------


def test_flava_consistent_passes(tiny_flava_dir: Path) -> None:
    adapter = FLAVAAdapter(read_hf_config(tiny_flava_dir))
    adapter.check_dimensions()
    adapter.check_dimensions(read_weight_shapes(tiny_flava_dir))
    FLAVAAdapter.from_example().check_dimensions()


def test_flava_projections_that_disagree(tiny_flava_dir: Path) -> None:
    shapes = read_weight_shapes(tiny_flava_dir)
    shapes["text_projection.weight"] = [256, 40]
    with pytest.raises(DimensionMismatchError) as exc:
        FLAVAAdapter(read_hf_config(tiny_flava_dir)).check_dimensions(shapes)
    _assert_names(_message(exc), "256", "24", "text_projection", "image_projection", "projection_dim")


def test_flava_multimodal_hidden_tampered(tiny_flava_dir: Path) -> None:
    config = read_hf_config(tiny_flava_dir)
    config["multimodal_config"] = {**config["multimodal_config"], "hidden_size": 96}
    with pytest.raises(DimensionMismatchError) as exc:
        FLAVAAdapter(config).check_dimensions(read_weight_shapes(tiny_flava_dir))
    _assert_names(_message(exc), "96", "48", "multimodal_config.hidden_size", "image_to_mm_projection")


def test_flava_mm_projections_that_disagree(tiny_flava_dir: Path) -> None:
    shapes = read_weight_shapes(tiny_flava_dir)
    shapes["text_to_mm_projection.weight"] = [64, 40]
    with pytest.raises(DimensionMismatchError) as exc:
        FLAVAAdapter(read_hf_config(tiny_flava_dir)).check_dimensions(shapes)
    _assert_names(_message(exc), "64", "48", "text_to_mm_projection", "multimodal_config.hidden_size")


def test_flava_image_hidden_tampered(tiny_flava_dir: Path) -> None:
    config = read_hf_config(tiny_flava_dir)
    config["image_config"] = {**config["image_config"], "hidden_size": 64}
    with pytest.raises(DimensionMismatchError) as exc:
        FLAVAAdapter(config).check_dimensions(read_weight_shapes(tiny_flava_dir))
    _assert_names(_message(exc), "64", "32", "image_config.hidden_size")


# --- fusion ---------------------------------------------------------------------------


def test_fusion_consistent_passes(tiny_fusion_dir: Path) -> None:
    adapter = FusionAdapter(read_hf_config(tiny_fusion_dir))
    adapter.check_dimensions()
    adapter.check_dimensions(read_weight_shapes(tiny_fusion_dir))
    FusionAdapter.from_example().check_dimensions()


def test_fusion_declared_head_input_tampered(tiny_fusion_dir: Path) -> None:
    config = read_hf_config(tiny_fusion_dir) | {"fusion_input_dim": 1536}
    with pytest.raises(DimensionMismatchError) as exc:
        FusionAdapter(config).check_dimensions()
    _assert_names(
        _message(exc), "1536", "80", "32", "48",
        "fusion_input_dim", "text_config.hidden_size", "vision_config.hidden_size",
    )


def test_fusion_encoder_hidden_tampered(tiny_fusion_dir: Path) -> None:
    config = read_hf_config(tiny_fusion_dir)
    config.pop("fusion_input_dim")  # only the weights can tell now
    config["text_config"] = {**config["text_config"], "hidden_size": 768}
    with pytest.raises(DimensionMismatchError) as exc:
        FusionAdapter(config).check_dimensions(read_weight_shapes(tiny_fusion_dir))
    _assert_names(
        _message(exc), "80", "816", "fusion_head.weight",
        "fusion_input_dim", "text_config.hidden_size", "vision_config.hidden_size",
    )


def test_fusion_head_weight_tampered(tiny_fusion_dir: Path) -> None:
    shapes = read_weight_shapes(tiny_fusion_dir)
    shapes["fusion_head.weight"] = [16, 1536]
    with pytest.raises(DimensionMismatchError) as exc:
        FusionAdapter(read_hf_config(tiny_fusion_dir)).check_dimensions(shapes)
    _assert_names(_message(exc), "1536", "80", "fusion_input_dim", "text_config.hidden_size")


def test_fusion_dim_tampered(tiny_fusion_dir: Path) -> None:
    config = read_hf_config(tiny_fusion_dir) | {"fusion_dim": 256}
    with pytest.raises(DimensionMismatchError) as exc:
        FusionAdapter(config).check_dimensions(read_weight_shapes(tiny_fusion_dir))
    _assert_names(_message(exc), "256", "16", "fusion_dim")
