"""Fixtures for config and check tests: a fixture adapter and target registered as
plugins, fake model folders (config.json + tiny safetensors) and the user's seed file.

Nothing here depends on mmship's built-in adapters or targets.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from safetensors.numpy import save_file

import mmship
from mmship.core.adapter import Adapter
from mmship.core.errors import DimensionMismatchError
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec
from mmship.core.target import Deployment, DeployPlan, Target

#: The user's deploy config, key for key and value for value (SEED.md step 5).
SEED_YAML = """\
runtime:
  framework: pytorch
  version: 1.12
compute:
  instance_type: gpu.large
  min_replicas: 1
  max_replicas: 5
model:
  name: clip-multimodal
  path: ./clip_quantized
  inputs:
    - name: image
      type: tensor
      shape: [-1, 3, 224, 224]
    - name: text
      type: tensor
      shape: [-1, 77]
  serving_params:
    default_batch_size: 4
    precision: fp16
    accelerator: tensorrt
autoscaling:
  metrics:
    - type: cpu_utilization
      threshold: 60%
    - type: memory_utilization
      threshold: 70%
  cooldown: 300
"""

FAKE_CONFIG: dict[str, Any] = {
    "model_type": "fakeclip",
    "architectures": ["FakeClipModel"],
    "projection_dim": 512,
    "vision_config": {"hidden_size": 64, "image_size": 224},
    "text_config": {"hidden_size": 32, "max_position_embeddings": 77},
}


class FakeClipAdapter(Adapter):
    """A CLIP-shaped fixture adapter: pixel_values NCHW, input_ids/attention_mask, two
    projections that must agree."""

    name = "fakeclip"
    description = "fixture dual encoder"
    model_types = ("fakeclip",)
    architectures = ("FakeClipModel",)
    example_config: ClassVar[Mapping[str, Any]] = FAKE_CONFIG

    @property
    def image_size(self) -> int:
        return int(self.hf_config["vision_config"]["image_size"])

    @property
    def max_text_length(self) -> int:
        return int(self.hf_config["text_config"]["max_position_embeddings"])

    def input_specs(self) -> list[TensorSpec]:
        size = self.image_size
        return [
            TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, size, size], modality="image", layout="NCHW"),
            TensorSpec(name="input_ids", dtype="int64", shape=[-1, -1], modality="text"),
            TensorSpec(name="attention_mask", dtype="int64", shape=[-1, -1], modality="text"),
        ]

    def output_specs(self) -> list[TensorSpec]:
        dim = int(self.hf_config["projection_dim"])
        return [
            TensorSpec(name="image_embeds", dtype="float32", shape=[-1, dim], modality="embedding"),
            TensorSpec(name="text_embeds", dtype="float32", shape=[-1, dim], modality="embedding"),
        ]

    def graph_specs(self) -> list[GraphSpec]:
        return [
            GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
            GraphSpec(name="text", inputs=["input_ids", "attention_mask"], outputs=["text_embeds"]),
        ]

    def default_serving_params(self) -> ServingParams:
        return ServingParams(default_batch_size=8, max_batch_size=16, max_delay_ms=4)

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        if not weight_shapes:
            return
        image = weight_shapes.get("visual_projection.weight")
        text = weight_shapes.get("text_projection.weight")
        if image and text and image[0] != text[0]:
            raise DimensionMismatchError(
                f"text_projection gives {text[0]}-dim text embeddings but visual_projection gives "
                f"{image[0]}-dim image embeddings; they must match (config keys: projection_dim)",
                hint="set projection_dim once for both projections and re-export the checkpoint",
            )


class FakeCloudSettings(BaseModel):
    """Settings of the fixture target."""

    model_config = ConfigDict(extra="forbid")
    region: Literal["eu", "us"]
    gpus: int = Field(1, ge=1)
    api_token: str | None = None


class FakeCloudTarget(Target):
    """A fixture deploy target with its own settings model."""

    name = "fakecloud"
    description = "fixture cloud"
    settings_model = FakeCloudSettings

    def plan(self, bundle: Any, config: Any) -> DeployPlan:
        return DeployPlan(target=self.name, summary="nothing")

    def deploy(self, bundle: Any, config: Any, plan: DeployPlan) -> Deployment:
        return Deployment(target=self.name, name="fixture")


class FixturePlugin:
    """Registers the fixture adapter and target."""

    @mmship.hookimpl
    def mmship_register_adapters(self, register: Any) -> None:
        register(FakeClipAdapter)

    @mmship.hookimpl
    def mmship_register_targets(self, register: Any) -> None:
        register(FakeCloudTarget)


def register_fixture_plugin() -> None:
    """Register :class:`FixturePlugin` with the process-wide plugin manager."""
    from mmship.core.manager import get_plugin_manager

    get_plugin_manager().register(FixturePlugin(), name="config-fixtures")


def write_fake_model(
    folder: Path,
    *,
    image_proj: int = 512,
    text_proj: int = 512,
    image_size: int = 224,
    max_text: int = 77,
    model_type: str = "fakeclip",
) -> Path:
    """A model folder: config.json plus a tiny safetensors file with both projections."""
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(FAKE_CONFIG))
    config["model_type"] = model_type
    config["projection_dim"] = image_proj
    config["vision_config"]["image_size"] = image_size
    config["text_config"]["max_position_embeddings"] = max_text
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    save_file(
        {
            "visual_projection.weight": np.zeros((image_proj, 64), dtype=np.float32),
            "text_projection.weight": np.zeros((text_proj, 32), dtype=np.float32),
        },
        str(folder / "model.safetensors"),
    )
    return folder


def add_sparse_weights(folder: Path, n_bytes: int, name: str = "big.safetensors") -> Path:
    """A valid safetensors file of ``n_bytes`` whose data is a hole (no disk used)."""
    count = n_bytes // 4
    header = json.dumps({"big": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path = folder / name
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)))
        fh.write(header)
        fh.truncate(8 + len(header) + count * 4)
    return path
