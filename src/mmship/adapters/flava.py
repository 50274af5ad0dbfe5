"""The ``flava`` adapter: Meta's FLAVA (``FlavaModel``) image, text and multimodal encoders.

FLAVA has three transformers. The image and text encoders are exported like CLIP's
towers: the embedding is the projection of the encoder's final (layer-normed) [CLS]
state, i.e. ``FlavaModel.get_image_features(...).pooler_output[:, 0]`` (in transformers 5
``get_*_features`` project *every* token; index 0 is the [CLS] one), and the zero-shot
score is ``exp(logit_scale)`` times their cosine, as in FLAVA's global contrastive head.

The multimodal encoder takes both: the last hidden states of the two unimodal encoders
(before their final layer norm) go through ``image_to_mm_projection`` /
``text_to_mm_projection``, are concatenated behind a [CLS] token and encoded; its output
is that [CLS] state, ``FlavaModel(...).multimodal_embeddings[:, 0]``
(``multimodal_config.hidden_size`` wide).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mmship import hookimpl
from mmship.adapters.base import Projection, TransformersAdapter
from mmship.adapters.scoring import ContrastiveScoring
from mmship.core.adapter import ExportModule
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec

#: facebook/flava-full's shape (``FlavaConfig()`` defaults).
FLAVA_FULL: dict[str, Any] = {
    "model_type": "flava",
    "architectures": ["FlavaModel"],
    "projection_dim": 768,
    "hidden_size": 768,
    "logit_scale_init_value": 2.6592,
    "image_config": {"model_type": "flava_image_model", "hidden_size": 768, "image_size": 224, "patch_size": 16},
    "text_config": {
        "model_type": "flava_text_model",
        "hidden_size": 768,
        "max_position_embeddings": 512,
        "vocab_size": 30522,
        "pad_token_id": 0,
    },
    "multimodal_config": {"model_type": "flava_multimodal_model", "hidden_size": 768, "use_cls_token": True},
}


class FLAVAAdapter(ContrastiveScoring, TransformersAdapter):
    """FLAVA (``FlavaModel``): image, text and multimodal graphs."""

    name = "flava"
    text_padding = "longest"
    description = "FLAVA: image and text encoders into projection_dim, plus a multimodal encoder"
    model_types = ("flava",)
    architectures = ("FlavaModel",)
    example_config: ClassVar[Mapping[str, Any]] = FLAVA_FULL
    model_class_name = "FlavaModel"
    vision_key = "image_config"
    text_key = "text_config"
    config_defaults: ClassVar[Mapping[str, Any]] = {
        "projection_dim": 768,
        "image_config.hidden_size": 768,
        "image_config.image_size": 224,
        "text_config.hidden_size": 768,
        "text_config.max_position_embeddings": 512,
        "text_config.vocab_size": 30522,
        "multimodal_config.hidden_size": 768,
    }

    @property
    def projection_dim(self) -> int:
        """Width of the image and text embeddings (``projection_dim``)."""
        return self.config_int("projection_dim")

    @property
    def multimodal_hidden(self) -> int:
        """Width of the multimodal embedding (``multimodal_config.hidden_size``)."""
        return self.config_int("multimodal_config.hidden_size")

    # --- specs ------------------------------------------------------------------------

    def input_specs(self) -> list[TensorSpec]:
        return [self.image_input_spec(), *self.text_input_specs()]

    def output_specs(self) -> list[TensorSpec]:
        proj = self.projection_dim
        return [
            self.embedding_spec("image_embeds", proj, "projected image [CLS] features (unnormalised)"),
            self.embedding_spec("text_embeds", proj, "projected text [CLS] features (unnormalised)"),
            self.embedding_spec("multimodal_embeds", self.multimodal_hidden, "multimodal encoder [CLS] state"),
        ]

    def graph_specs(self) -> list[GraphSpec]:
        return [
            GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
            GraphSpec(name="text", inputs=["input_ids", "attention_mask"], outputs=["text_embeds"]),
            GraphSpec(
                name="multimodal",
                inputs=["pixel_values", "input_ids", "attention_mask"],
                outputs=["multimodal_embeds"],
            ),
        ]

    def default_serving_params(self) -> ServingParams:
        # Three encoders and a 16x16-patch image tower: smaller batches than CLIP on CPU.
        return ServingParams(default_batch_size=4, max_batch_size=16, max_delay_ms=5)

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        """Image and text projections must both give ``projection_dim``; the projections
        into the multimodal encoder must both give ``multimodal_config.hidden_size``; every
        projection must take its encoder's ``hidden_size``."""
        self.config_int("projection_dim")
        self.config_int("multimodal_config.hidden_size")
        image_hidden, text_hidden = "image_config.hidden_size", "text_config.hidden_size"
        self.check_projections(
            weight_shapes,
            [
                Projection("image_projection.weight", "image embeddings", image_hidden, "projection_dim"),
                Projection("text_projection.weight", "text embeddings", text_hidden, "projection_dim"),
            ],
        )
        mm_hidden = "multimodal_config.hidden_size"
        self.check_projections(
            weight_shapes,
            [
                Projection("image_to_mm_projection.weight", "multimodal image states", image_hidden, mm_hidden),
                Projection("text_to_mm_projection.weight", "multimodal text states", text_hidden, mm_hidden),
            ],
        )

    # --- export -----------------------------------------------------------------------

    def export_modules(self, model: Any, batch_size: int = 2) -> list[ExportModule]:
        """Image, text and multimodal modules with seeded example inputs."""
        import torch

        class ImageTower(torch.nn.Module):
            """``pixel_values -> image_projection(image_model(...).last_hidden_state[:, 0])``."""

            def __init__(self) -> None:
                super().__init__()
                self.image_model = model.image_model
                self.image_projection = model.image_projection

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                cls = self.image_model(pixel_values=pixel_values).last_hidden_state[:, 0]
                return self.image_projection(cls)

        class TextTower(torch.nn.Module):
            """``input_ids, attention_mask -> text_projection(text [CLS])``."""

            def __init__(self) -> None:
                super().__init__()
                self.text_model = model.text_model
                self.text_projection = model.text_projection

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                states = self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                return self.text_projection(states[:, 0])

        class Multimodal(torch.nn.Module):
            """``pixel_values, input_ids, attention_mask -> multimodal [CLS] state``."""

            def __init__(self) -> None:
                super().__init__()
                self.flava = model

            def forward(
                self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
            ) -> torch.Tensor:
                out = self.flava(
                    pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask, return_dict=True
                )
                return out.multimodal_embeddings[:, 0]

        pixels = self.example_pixels(batch_size)
        ids, mask = self.example_text(batch_size, pad=model.config.text_config.pad_token_id or 0)
        image_graph, text_graph, mm_graph = self.graph_specs()
        return [
            ExportModule(image_graph, ImageTower().eval(), (pixels,)),
            ExportModule(text_graph, TextTower().eval(), (ids, mask)),
            ExportModule(mm_graph, Multimodal().eval(), (pixels, ids, mask)),
        ]


@hookimpl
def mmship_register_adapters(register: Any) -> None:
    """Register :class:`FLAVAAdapter`."""
    register(FLAVAAdapter)
