"""The ``fusion`` adapter: mmship's BERT + ViT fusion model (``model_type: mmship-fusion``).

The model (:mod:`mmship.adapters.fusion_model`) concatenates BERT's and ViT's [CLS]
vectors into ``Linear(text_hidden + vision_hidden, fusion_dim)``. It is exported as one
``fused`` graph taking both modalities (``pixel_values, input_ids, attention_mask ->
fused_embeds``); the head's output is the model's score/embedding. The dimension rule:
the head's input (``fusion_input_dim`` and the head weight's shape) must equal
``text_config.hidden_size + vision_config.hidden_size``.

torch and transformers are imported only when a model is loaded or exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mmship import hookimpl
from mmship.adapters.base import (
    Dim,
    TransformersAdapter,
    dimension_mismatch,
    find_weight,
)
from mmship.adapters.fusion_rules import (
    FUSION_BASE,
    HEAD_WEIGHT,
    MODEL_TYPE,
    fusion_head_mismatch,
)
from mmship.core.adapter import ExportModule
from mmship.core.errors import AdapterError
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec


class FusionAdapter(TransformersAdapter):
    """BERT + ViT [CLS] fusion into a linear head: one graph with both inputs."""

    name = "fusion"
    text_padding = "longest"
    description = "BERT + ViT fusion: [CLS] vectors concatenated into a linear head (one graph)"
    model_types = (MODEL_TYPE,)
    architectures = ("MmshipFusionModel",)
    example_config: ClassVar[Mapping[str, Any]] = FUSION_BASE
    config_defaults: ClassVar[Mapping[str, Any]] = {
        "fusion_dim": 256,
        "text_config.hidden_size": 768,
        "text_config.max_position_embeddings": 512,
        "text_config.vocab_size": 30522,
        "vision_config.hidden_size": 768,
        "vision_config.image_size": 224,
    }

    @property
    def fusion_dim(self) -> int:
        """Width of the fused embedding (``fusion_dim``)."""
        return self.config_int("fusion_dim")

    @property
    def text_hidden(self) -> int:
        """``text_config.hidden_size``: BERT's [CLS] width."""
        return self.config_int("text_config.hidden_size")

    @property
    def vision_hidden(self) -> int:
        """``vision_config.hidden_size``: ViT's [CLS] width."""
        return self.config_int("vision_config.hidden_size")

    # --- specs ------------------------------------------------------------------------

    def input_specs(self) -> list[TensorSpec]:
        declared = self.hf_config.get("input_modalities")
        if declared is not None and not {"image", "text"} <= set(declared):
            raise AdapterError(
                f"config.json input_modalities is {list(declared)}, but the fusion model takes both "
                "'image' and 'text'",
                hint='set input_modalities to ["text", "image"] in config.json',
            )
        return [self.image_input_spec(), *self.text_input_specs()]

    def output_specs(self) -> list[TensorSpec]:
        return [self.embedding_spec("fused_embeds", self.fusion_dim, "the fusion head's output")]

    def graph_specs(self) -> list[GraphSpec]:
        return [
            GraphSpec(
                name="fused",
                inputs=["pixel_values", "input_ids", "attention_mask"],
                outputs=["fused_embeds"],
            )
        ]

    def default_serving_params(self) -> ServingParams:
        return ServingParams(default_batch_size=8, max_batch_size=32, max_delay_ms=5)

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        """The head's input (``fusion_input_dim`` and the head weight) must equal text
        hidden + vision hidden; the head's output must equal ``fusion_dim``."""
        text, vision = self.text_hidden, self.vision_hidden
        declared = self.hf_config.get("fusion_input_dim")
        if declared is not None and int(declared) != text + vision:
            raise fusion_head_mismatch(int(declared), "config.json fusion_input_dim", text, vision)
        head = find_weight(weight_shapes, HEAD_WEIGHT)  # [fusion_dim, text + vision]
        if head is None:
            return
        name, shape = head
        if shape[1] != text + vision:
            raise fusion_head_mismatch(shape[1], name, text, vision)
        if shape[0] != self.fusion_dim:
            raise dimension_mismatch(
                Dim(self.fusion_dim, "config.json fusion_dim", "fused embeddings", verb="says"),
                Dim(shape[0], name, "fused embeddings"),
                ["fusion_dim"],
                f"set fusion_dim to {shape[0]} in config.json (the checkpoint's width), or re-export the checkpoint",
            )

    # --- loading and export -------------------------------------------------------------

    def model_class(self) -> Any:
        """:class:`~mmship.adapters.fusion_model.MmshipFusionModel`, with the Auto classes
        taught the ``mmship-fusion`` model type (no remote code involved)."""
        from mmship.adapters.fusion_model import (
            MmshipFusionModel,
            register_auto_classes,
        )

        register_auto_classes()
        return MmshipFusionModel

    def export_modules(self, model: Any, batch_size: int = 2) -> list[ExportModule]:
        """The whole model as one module returning ``fused_embeds``, with example inputs."""
        import torch

        class Fused(torch.nn.Module):
            """``pixel_values, input_ids, attention_mask -> model(...).fused_embeds``."""

            def __init__(self) -> None:
                super().__init__()
                self.fusion = model

            def forward(
                self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
            ) -> torch.Tensor:
                return self.fusion(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask).fused_embeds

        ids, mask = self.example_text(batch_size, pad=model.config.text_config.pad_token_id or 0)
        (graph,) = self.graph_specs()
        return [ExportModule(graph, Fused().eval(), (self.example_pixels(batch_size), ids, mask))]


@hookimpl
def mmship_register_adapters(register: Any) -> None:
    """Register :class:`FusionAdapter`."""
    register(FusionAdapter)
