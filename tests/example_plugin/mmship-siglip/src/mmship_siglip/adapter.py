"""SigLIP adapter (the tutorial's): specs, dimension rule, scoring, loading and export modules.

SigLIP has two towers like CLIP, but no separate projection layers: the image embedding
is the vision tower's attention-pooled output (``vision_config.hidden_size`` wide) and the
text embedding is the text head's output (``text_config.projection_size`` wide). Texts are
padded to ``max_position_embeddings`` (64) and take no attention mask. Each label is scored
with its own sigmoid. mmship ships a complete ``siglip`` adapter; this simplified one is
registered as ``siglip-tutorial``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmship.core.adapter import Adapter, ExportModule, LoadOptions
from mmship.core.errors import DimensionMismatchError
from mmship.core.specs import GraphSpec, ScoringSpec, ServingParams, TensorSpec


class SiglipAdapter(Adapter):
    """Google SigLIP image-text models (``SiglipModel``)."""

    name = "siglip-tutorial"
    description = "SigLIP dual encoder (sigmoid loss): image and text towers (the tutorial's adapter)"
    model_types = ("siglip",)
    architectures = ("SiglipModel",)
    example_config = {
        "model_type": "siglip",
        "architectures": ["SiglipModel"],
        "text_config": {"hidden_size": 768, "projection_size": 768, "max_position_embeddings": 64},
        "vision_config": {"hidden_size": 768, "image_size": 224, "patch_size": 16},
    }

    @property
    def _vision(self) -> dict[str, Any]:
        return self.hf_config.get("vision_config") or {}

    @property
    def _text(self) -> dict[str, Any]:
        return self.hf_config.get("text_config") or {}

    @property
    def image_size(self) -> int:
        return int(self._vision.get("image_size", 224))

    @property
    def max_text_length(self) -> int:
        return int(self._text.get("max_position_embeddings", 64))

    @property
    def embed_dim(self) -> int:
        return int(self._vision.get("hidden_size", 768))

    def input_specs(self) -> list[TensorSpec]:
        size = self.image_size
        return [
            TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, size, size], modality="image", layout="NCHW"),
            TensorSpec(name="input_ids", dtype="int64", shape=[-1, self.max_text_length], modality="text"),
        ]

    def output_specs(self) -> list[TensorSpec]:
        return [
            TensorSpec(name="image_embeds", dtype="float32", shape=[-1, self.embed_dim], modality="embedding"),
            TensorSpec(name="text_embeds", dtype="float32", shape=[-1, self.embed_dim], modality="embedding"),
        ]

    def graph_specs(self) -> list[GraphSpec]:
        return [
            GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
            GraphSpec(name="text", inputs=["input_ids"], outputs=["text_embeds"]),
        ]

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        text_dim = int(self._text.get("projection_size", self._text.get("hidden_size", 768)))
        if text_dim != self.embed_dim:
            raise DimensionMismatchError(
                f"SigLIP text embeddings are {text_dim}-dim (text_config.projection_size) but image "
                f"embeddings are {self.embed_dim}-dim (vision_config.hidden_size); they must match",
                hint=f"set text_config.projection_size to {self.embed_dim} in config.json",
            )

    def scoring(self, model: Any | None = None) -> ScoringSpec:
        """One sigmoid per label of ``exp(logit_scale) * cosine + logit_bias``, with the
        model's learned scale and bias (SigLIP's initial 10 and -10 without a model)."""
        if model is None:
            return ScoringSpec(kind="sigmoid", logit_scale=10.0, logit_bias=-10.0)
        return ScoringSpec(
            kind="sigmoid",
            logit_scale=float(model.logit_scale.detach().exp()),
            logit_bias=float(model.logit_bias.detach()),
        )

    def default_serving_params(self) -> ServingParams:
        return ServingParams(default_batch_size=8, max_batch_size=32, max_delay_ms=5)

    def load_model(self, folder: Path, options: LoadOptions) -> Any:
        from transformers import SiglipModel

        model = SiglipModel.from_pretrained(folder, use_safetensors=True, revision=options.revision)
        return model.eval()

    def export_modules(self, model: Any, batch_size: int = 2) -> list[ExportModule]:
        import torch

        class ImageTower(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.vision = model.vision_model

            def forward(self, pixel_values):
                return self.vision(pixel_values=pixel_values).pooler_output

        class TextTower(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.text = model.text_model

            def forward(self, input_ids):
                return self.text(input_ids=input_ids).pooler_output

        image, text = self.graph_specs()
        pixels = torch.randn(batch_size, 3, self.image_size, self.image_size)
        ids = torch.randint(0, int(self._text.get("vocab_size", 32000)), (batch_size, self.max_text_length))
        return [ExportModule(image, ImageTower().eval(), (pixels,)), ExportModule(text, TextTower().eval(), (ids,))]
