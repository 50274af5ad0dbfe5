"""The ``siglip`` adapter: Google's SigLIP (``SiglipModel``), a dual encoder scored with sigmoids.

SigLIP has two towers like CLIP but no separate projection layers: the image embedding is
the vision tower's attention-pooled output (``SiglipModel.get_image_features(...)
.pooler_output``, ``vision_config.hidden_size`` wide) and the text embedding is the text
head applied to the *last* token's state (``get_text_features(...).pooler_output``,
``text_config.projection_size`` wide). Two graphs are exported, ``image`` (``pixel_values
-> image_embeds``) and ``text`` (``input_ids -> text_embeds``).

Texts: SigLIP was trained on texts padded to ``max_position_embeddings`` (64) with its pad
token (which is its eos token), attending to the padding: there is no attention mask in the
original model, and the pooled state is the last position's, so the length is fixed and the
text graph takes ``input_ids`` only. The HF tokenizer's ``attention_mask`` is not fed:
``SiglipModel`` called with ``input_ids`` alone is the reference (masking the padding would
change every embedding). The align stage pads to that fixed length and checks the ids
token for token against the HF tokenizer.

Scoring: ``sigmoid(exp(logit_scale) * cosine + logit_bias)`` per label
(:class:`~mmship.adapters.scoring.SigmoidScoring`), as ``SiglipModel.forward`` computes
``logits_per_image``; the probabilities of one image's labels do not sum to 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mmship import hookimpl
from mmship.adapters.base import (
    Dim,
    Projection,
    TransformersAdapter,
    dimension_mismatch,
)
from mmship.adapters.scoring import SigmoidScoring
from mmship.core.adapter import ExportModule
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec

#: google/siglip-base-patch16-224's shape (``SiglipConfig()`` defaults).
SIGLIP_BASE: dict[str, Any] = {
    "model_type": "siglip",
    "architectures": ["SiglipModel"],
    "text_config": {
        "model_type": "siglip_text_model",
        "hidden_size": 768,
        "projection_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "max_position_embeddings": 64,
        "vocab_size": 32000,
        "pad_token_id": 1,
    },
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "image_size": 224,
        "patch_size": 16,
    },
}


class SiglipAdapter(SigmoidScoring, TransformersAdapter):
    """SigLIP dual encoders (``SiglipModel``): an image graph and a text graph, sigmoid scores."""

    name = "siglip"
    description = "SigLIP dual encoder: image and text towers, one sigmoid score per label"
    model_types = ("siglip",)
    architectures = ("SiglipModel",)
    example_config: ClassVar[Mapping[str, Any]] = SIGLIP_BASE
    model_class_name = "SiglipModel"
    config_defaults: ClassVar[Mapping[str, Any]] = {
        "vision_config.hidden_size": 768,
        "vision_config.image_size": 224,
        "text_config.hidden_size": 768,
        "text_config.max_position_embeddings": 64,
        "text_config.vocab_size": 32000,
    }

    # --- dimensions -------------------------------------------------------------------

    @property
    def image_dim(self) -> int:
        """Width of the image embeddings (``vision_config.hidden_size``)."""
        return self.config_int("vision_config.hidden_size")

    @property
    def text_dim(self) -> int:
        """Width of the text embeddings (``text_config.projection_size``, which defaults to
        ``text_config.hidden_size``)."""
        if self.config_value("text_config.projection_size", None) is None:
            return self.config_int("text_config.hidden_size")
        return self.config_int("text_config.projection_size")

    @property
    def example_text_length(self) -> int:
        """The fixed text length (export examples must have the input's static length)."""
        return self.max_text_length

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        """The text head must give ``vision_config.hidden_size``-wide embeddings (the image
        tower's width) and take ``text_config.hidden_size``; checked against the weights."""
        if self.config_value("text_config.projection_size", None) is not None:
            self.check_projections(
                weight_shapes,
                [Projection("text_model.head.weight", "text embeddings", "text_config.hidden_size", "text_config.projection_size")],
            )
        if self.text_dim != self.image_dim:
            key = "text_config.projection_size"
            raise dimension_mismatch(
                Dim(self.text_dim, f"config.json {key}", "text embeddings", verb="says"),
                Dim(self.image_dim, "config.json vision_config.hidden_size", "image embeddings", verb="says"),
                [key, "vision_config.hidden_size"],
                f"set {key} to {self.image_dim} in config.json (the image tower's width), or re-export the checkpoint",
            )

    # --- specs ------------------------------------------------------------------------

    def input_specs(self) -> list[TensorSpec]:
        length = self.max_text_length
        ids = TensorSpec(
            name="input_ids",
            dtype="int64",
            shape=[-1, length],
            modality="text",
            description=f"token ids padded with the pad token to {length} (no attention mask: SigLIP attends to padding)",
        )
        return [self.image_input_spec(), ids]

    def output_specs(self) -> list[TensorSpec]:
        return [
            self.embedding_spec("image_embeds", self.image_dim, "attention-pooled image features (unnormalised)"),
            self.embedding_spec("text_embeds", self.text_dim, "text head output at the last token (unnormalised)"),
        ]

    def graph_specs(self) -> list[GraphSpec]:
        return [
            GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
            GraphSpec(name="text", inputs=["input_ids"], outputs=["text_embeds"]),
        ]

    def default_serving_params(self) -> ServingParams:
        return ServingParams(default_batch_size=8, max_batch_size=32, max_delay_ms=5)

    # --- export -----------------------------------------------------------------------

    def export_modules(self, model: Any, batch_size: int = 2) -> list[ExportModule]:
        """The two towers with seeded example inputs (texts of every length, padded with the
        pad token to the fixed length and ending in eos when the config names one)."""
        import torch

        class ImageTower(torch.nn.Module):
            """``pixel_values -> vision_model(...).pooler_output``."""

            def __init__(self) -> None:
                super().__init__()
                self.vision_model = model.vision_model

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.vision_model(pixel_values=pixel_values).pooler_output

        class TextTower(torch.nn.Module):
            """``input_ids -> text_model(input_ids).pooler_output`` (no attention mask)."""

            def __init__(self) -> None:
                super().__init__()
                self.text_model = model.text_model

            def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
                return self.text_model(input_ids=input_ids).pooler_output

        text_cfg = model.config.text_config
        vocab = int(text_cfg.vocab_size)
        eos = text_cfg.eos_token_id if isinstance(text_cfg.eos_token_id, int) and text_cfg.eos_token_id < vocab else None
        ids, _ = self.example_text(batch_size, eos=eos, pad=text_cfg.pad_token_id or 0)
        image_graph, text_graph = self.graph_specs()
        return [
            ExportModule(image_graph, ImageTower().eval(), (self.example_pixels(batch_size),)),
            ExportModule(text_graph, TextTower().eval(), (ids,)),
        ]


@hookimpl
def mmship_register_adapters(register: Any) -> None:
    """Register :class:`SiglipAdapter`."""
    register(SiglipAdapter)
