"""The ``clip`` adapter: OpenAI CLIP and every ``CLIPModel`` checkpoint.

CLIP is a dual encoder: the image tower's pooled [CLS] state goes through
``visual_projection`` and the text tower's pooled end-of-text state through
``text_projection``; both land in one ``projection_dim``-wide space, where the zero-shot
score is ``exp(logit_scale)`` times the cosine. Two graphs are exported, ``image``
(``pixel_values -> image_embeds``) and ``text`` (``input_ids, attention_mask ->
text_embeds``); the embeddings are the projected, unnormalised features that
``CLIPModel.get_image_features`` / ``get_text_features`` return as ``.pooler_output``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mmship import hookimpl
from mmship.adapters.base import Projection, TransformersAdapter
from mmship.adapters.scoring import ContrastiveScoring
from mmship.core.adapter import ExportModule
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec

#: openai/clip-vit-base-patch32's shape (``CLIPConfig()`` defaults).
CLIP_VIT_B32: dict[str, Any] = {
    "model_type": "clip",
    "architectures": ["CLIPModel"],
    "projection_dim": 512,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "model_type": "clip_text_model",
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_attention_heads": 8,
        "num_hidden_layers": 12,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    },
    "vision_config": {
        "model_type": "clip_vision_model",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "image_size": 224,
        "patch_size": 32,
    },
}


class CLIPAdapter(ContrastiveScoring, TransformersAdapter):
    """CLIP dual encoders (``CLIPModel``): an image graph and a text graph."""

    name = "clip"
    text_padding = "longest"
    description = "CLIP dual encoder: image and text towers into one projection_dim space"
    model_types = ("clip",)
    architectures = ("CLIPModel",)
    example_config: ClassVar[Mapping[str, Any]] = CLIP_VIT_B32
    model_class_name = "CLIPModel"
    config_defaults: ClassVar[Mapping[str, Any]] = {
        "projection_dim": 512,
        "vision_config.hidden_size": 768,
        "vision_config.image_size": 224,
        "text_config.hidden_size": 512,
        "text_config.max_position_embeddings": 77,
        "text_config.vocab_size": 49408,
    }

    # --- dimensions -------------------------------------------------------------------

    @property
    def projection_dim(self) -> int:
        """Width of both embeddings (``projection_dim``)."""
        return self.config_int("projection_dim")

    @property
    def vision_hidden(self) -> int:
        """``vision_config.hidden_size``: the image tower's width before projection."""
        return self.config_int("vision_config.hidden_size")

    @property
    def text_hidden(self) -> int:
        """``text_config.hidden_size``: the text tower's width before projection."""
        return self.config_int("text_config.hidden_size")

    # --- specs ------------------------------------------------------------------------

    def input_specs(self) -> list[TensorSpec]:
        return [self.image_input_spec(), *self.text_input_specs()]

    def output_specs(self) -> list[TensorSpec]:
        dim = self.projection_dim
        return [
            self.embedding_spec("image_embeds", dim, "projected image features (unnormalised)"),
            self.embedding_spec("text_embeds", dim, "projected text features (unnormalised)"),
        ]

    def graph_specs(self) -> list[GraphSpec]:
        return [
            GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
            GraphSpec(name="text", inputs=["input_ids", "attention_mask"], outputs=["text_embeds"]),
        ]

    def default_serving_params(self) -> ServingParams:
        return ServingParams(default_batch_size=8, max_batch_size=32, max_delay_ms=5)

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        """Both projections must give ``projection_dim``-wide embeddings, and each must take
        its tower's ``hidden_size``; checked against the weights when given."""
        self.config_int("projection_dim")  # present and numeric
        self.check_projections(
            weight_shapes,
            [
                Projection("visual_projection.weight", "image embeddings", "vision_config.hidden_size", "projection_dim"),
                Projection("text_projection.weight", "text embeddings", "text_config.hidden_size", "projection_dim"),
            ],
        )

    # --- export -----------------------------------------------------------------------

    def export_modules(self, model: Any, batch_size: int = 2) -> list[ExportModule]:
        """The image and text towers with their projections, and seeded example inputs.

        Example texts start with ``bos`` and end with ``eos`` (CLIP pools at the first
        ``eos_token_id``), have different real lengths and pad with ``pad_token_id``.
        """
        import torch

        class ImageTower(torch.nn.Module):
            """``pixel_values -> visual_projection(vision_model(...).pooler_output)``."""

            def __init__(self) -> None:
                super().__init__()
                self.vision_model = model.vision_model
                self.visual_projection = model.visual_projection

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                pooled = self.vision_model(pixel_values=pixel_values).pooler_output
                return self.visual_projection(pooled)

        class TextTower(torch.nn.Module):
            """``input_ids, attention_mask -> text_projection(text_model(...).pooler_output)``."""

            def __init__(self) -> None:
                super().__init__()
                self.text_model = model.text_model
                self.text_projection = model.text_projection

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
                return self.text_projection(pooled)

        text_cfg = model.config.text_config
        eos = text_cfg.eos_token_id if isinstance(text_cfg.eos_token_id, int) else None
        ids, mask = self.example_text(
            batch_size, bos=text_cfg.bos_token_id, eos=eos, pad=text_cfg.pad_token_id or 0
        )
        image_graph, text_graph = self.graph_specs()
        return [
            ExportModule(image_graph, ImageTower().eval(), (self.example_pixels(batch_size),)),
            ExportModule(text_graph, TextTower().eval(), (ids, mask)),
        ]


@hookimpl
def mmship_register_adapters(register: Any) -> None:
    """Register :class:`CLIPAdapter`."""
    register(CLIPAdapter)
