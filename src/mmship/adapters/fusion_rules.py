"""The fusion model's facts shared by its adapter and its ``PreTrainedModel``: the model
type, the seed's default config, and the dimension rule's error. A leaf module: it
imports neither torch nor the adapter or the model, so both can import it."""

from __future__ import annotations

from typing import Any

from mmship.adapters.base import Dim, dimension_mismatch
from mmship.core.errors import DimensionMismatchError

MODEL_TYPE = "mmship-fusion"
HEAD_WEIGHT = "fusion_head.weight"

#: The seed's model: bert-base-uncased + google/vit-base-patch16-224 into Linear(768*2, 256).
FUSION_BASE: dict[str, Any] = {
    "model_type": MODEL_TYPE,
    "architectures": ["MmshipFusionModel"],
    "fusion_dim": 256,
    "fusion_input_dim": 1536,
    "input_modalities": ["text", "image"],
    "text_config": {
        "model_type": "bert",
        "hidden_size": 768,
        "max_position_embeddings": 512,
        "vocab_size": 30522,
        "pad_token_id": 0,
    },
    "vision_config": {"model_type": "vit", "hidden_size": 768, "image_size": 224, "patch_size": 16},
}


def fusion_head_mismatch(head_input: int, source: str, text: int, vision: int) -> DimensionMismatchError:
    """The error for a fusion head whose input width is not text hidden + vision hidden.

    :param head_input: the head's input width.
    :param source: where it came from (``config.json fusion_input_dim``, a weight name).
    :param text: ``text_config.hidden_size``.
    :param vision: ``vision_config.hidden_size``.
    """
    return dimension_mismatch(
        Dim(head_input, source, "fusion head input", verb="takes"),
        Dim(
            text + vision,
            f"the encoders' [CLS] vectors (text_config.hidden_size {text} + vision_config.hidden_size {vision})",
            "concatenated input",
            verb="give",
        ),
        ["fusion_input_dim", "text_config.hidden_size", "vision_config.hidden_size"],
        f"set fusion_input_dim to {text + vision} in config.json, or set text_config.hidden_size / "
        "vision_config.hidden_size to the encoders the head was trained on, then re-export the "
        "checkpoint with save_pretrained",
    )
