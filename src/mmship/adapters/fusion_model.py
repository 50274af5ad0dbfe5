"""The custom BERT + ViT fusion model from the seed, as a real ``PreTrainedModel``.

A BERT text encoder and a ViT image encoder each give a [CLS] vector; the two are
concatenated (text first) and passed through one linear fusion head::

    fused = Linear(text_hidden + vision_hidden, fusion_dim)(concat(text_cls, image_cls))

The seed's shape is ``bert-base-uncased`` + ``google/vit-base-patch16-224`` into
``Linear(768 * 2, 256)``. The model saves with ``save_pretrained`` (safetensors) and loads
with ``MmshipFusionModel.from_pretrained`` without ``trust_remote_code``: the code lives in
mmship. :func:`register_auto_classes` makes ``AutoConfig`` / ``AutoModel`` know the
``mmship-fusion`` model type too.

This module imports torch and transformers; :mod:`mmship.adapters.fusion` imports it only
when a model is built or loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    PreTrainedConfig,
    PreTrainedModel,
    ViTConfig,
    ViTModel,
)
from transformers.utils import ModelOutput

from mmship.adapters.fusion_rules import MODEL_TYPE, fusion_head_mismatch

#: The modalities the model takes, declared in every saved ``config.json``.
INPUT_MODALITIES = ("text", "image")


class MmshipFusionConfig(PreTrainedConfig):
    """Configuration of :class:`MmshipFusionModel`.

    :param text_config: a :class:`~transformers.BertConfig` (or its dict).
    :param vision_config: a :class:`~transformers.ViTConfig` (or its dict).
    :param fusion_dim: width of the fused embedding (the head's output).
    :param fusion_input_dim: the head's input width; it must equal
        ``text_config.hidden_size + vision_config.hidden_size`` (checked on construction,
        so also by ``from_pretrained``). Defaults to that sum and is saved with the config.
    :param input_modalities: the modalities the model takes (``text`` and ``image``).
    """

    model_type = MODEL_TYPE
    sub_configs_defaults = {"text_config": BertConfig, "vision_config": ViTConfig}

    text_config: Any = None
    vision_config: Any = None
    fusion_dim: int = 256
    fusion_input_dim: int | None = None
    input_modalities: Any = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self.input_modalities = list(self.input_modalities or INPUT_MODALITIES)
        if self.fusion_input_dim is None:
            # Declared in every saved config.json, so a later edit of an encoder's size is
            # caught when the config is read instead of deep inside weight loading.
            self.fusion_input_dim = self.concat_dim
        elif self.fusion_input_dim != self.concat_dim:
            raise fusion_head_mismatch(
                int(self.fusion_input_dim),
                "fusion_input_dim",
                int(self.text_config.hidden_size),
                int(self.vision_config.hidden_size),
            )

    @property
    def concat_dim(self) -> int:
        """Width of the concatenated [CLS] vectors: text hidden + vision hidden."""
        return int(self.text_config.hidden_size) + int(self.vision_config.hidden_size)


@dataclass
class MmshipFusionOutput(ModelOutput):
    """Outputs of :class:`MmshipFusionModel`.

    :param fused_embeds: the fusion head's output, ``[batch, fusion_dim]``.
    :param text_embeds: BERT's [CLS] vector, ``[batch, text_hidden]``.
    :param image_embeds: ViT's [CLS] vector, ``[batch, vision_hidden]``.
    """

    fused_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None


class MmshipFusionModel(PreTrainedModel):
    """BERT + ViT encoders whose [CLS] vectors feed one linear fusion head."""

    config_class = MmshipFusionConfig
    config: MmshipFusionConfig
    base_model_prefix = "mmship_fusion"
    main_input_name = "input_ids"
    input_modalities = INPUT_MODALITIES
    _supports_sdpa = True

    def __init__(self, config: MmshipFusionConfig) -> None:
        super().__init__(config)
        self.text_model = BertModel(config.text_config, add_pooling_layer=False)
        self.vision_model = ViTModel(config.vision_config, add_pooling_layer=False)
        self.fusion_head = nn.Linear(config.concat_dim, config.fusion_dim)
        self.post_init()

    def get_text_cls(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """BERT's last-layer [CLS] vector, ``[batch, text_hidden]``."""
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.last_hidden_state[:, 0]

    def get_image_cls(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """ViT's last-layer (layer-normed) [CLS] vector, ``[batch, vision_hidden]``."""
        return self.vision_model(pixel_values=pixel_values).last_hidden_state[:, 0]

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MmshipFusionOutput:
        """Encode both inputs and fuse their [CLS] vectors."""
        text_cls = self.get_text_cls(input_ids, attention_mask, token_type_ids)
        image_cls = self.get_image_cls(pixel_values)
        fused = self.fusion_head(torch.cat([text_cls, image_cls], dim=-1))
        return MmshipFusionOutput(fused_embeds=fused, text_embeds=text_cls, image_embeds=image_cls)


def register_auto_classes() -> None:
    """Make ``AutoConfig`` / ``AutoModel`` resolve ``model_type: mmship-fusion`` (idempotent)."""
    from transformers import AutoConfig, AutoModel

    try:
        AutoConfig.register(MODEL_TYPE, MmshipFusionConfig)
    except ValueError:  # already registered
        pass
    try:
        AutoModel.register(MmshipFusionConfig, MmshipFusionModel)
    except ValueError:
        pass
