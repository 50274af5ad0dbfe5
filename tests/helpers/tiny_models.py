"""Tiny random-weight model folders for tests, built offline from configs.

Each ``make_tiny_*`` writes what ``save_pretrained`` writes for a real checkpoint: the
config, safetensors weights and a processor (image processor + tokenizer in the same
folder, so ``AutoProcessor`` / ``AutoImageProcessor`` / ``AutoTokenizer`` load it).
Sizes are picked to be fast (hidden 32-48, 2 layers, 32x32 images) and to keep every
dimension distinct, so a check that confuses two keys cannot pass by accident.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.helpers.tokenizers import (
    make_bert_tokenizer,
    make_clip_tokenizer,
    make_siglip_tokenizer,
)

#: Image side of every tiny model (the processors resize/crop to it).
TINY_IMAGE_SIZE = 32

TINY_CLIP: dict[str, Any] = {
    "projection_dim": 24,
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
    },
    "vision_config": {
        "hidden_size": 48,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": TINY_IMAGE_SIZE,
        "patch_size": 8,
    },
}

TINY_FLAVA: dict[str, Any] = {
    "projection_dim": 24,
    "hidden_size": 48,
    "text_config": {
        "hidden_size": 40,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
    },
    "image_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": TINY_IMAGE_SIZE,
        "patch_size": 8,
    },
    "multimodal_config": {
        "hidden_size": 48,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    },
    "image_codebook_config": {"hidden_size": 16, "num_groups": 1, "num_blocks_per_group": 1, "vocab_size": 64},
}

TINY_FUSION: dict[str, Any] = {
    "fusion_dim": 16,
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
    },
    "vision_config": {
        "hidden_size": 48,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": TINY_IMAGE_SIZE,
        "patch_size": 8,
    },
}


TINY_SIGLIP: dict[str, Any] = {
    "text_config": {
        "hidden_size": 40,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 16,
        "projection_size": 32,
    },
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": TINY_IMAGE_SIZE,
        "patch_size": 8,
    },
}


def merge_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; dict values (sub-configs) merge key by key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _prepare(folder: str | Path, seed: int) -> Path:
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    return folder


def make_tiny_clip(folder: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """A tiny ``CLIPModel`` folder with ``CLIPProcessor`` files.

    ``overrides`` change :data:`TINY_CLIP` (sub-config dicts merge key by key). The text
    config's vocab size and bos/eos/pad ids match the tiny CLIP tokenizer, because CLIP's
    text pooling looks for ``eos_token_id``.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = _prepare(folder, seed)
    tokenizer = make_clip_tokenizer()
    values = merge_config(TINY_CLIP, overrides)
    values["text_config"] = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **values["text_config"],
    }
    size = values["vision_config"].get("image_size", TINY_IMAGE_SIZE)
    model = CLIPModel(CLIPConfig(**values)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def make_tiny_flava(folder: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """A tiny ``FlavaModel`` folder with ``FlavaProcessor`` files (BERT WordPiece tokenizer)."""
    from transformers import (
        FlavaConfig,
        FlavaImageProcessor,
        FlavaModel,
        FlavaProcessor,
    )

    folder = _prepare(folder, seed)
    tokenizer = make_bert_tokenizer()
    values = merge_config(TINY_FLAVA, overrides)
    values["text_config"] = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, **values["text_config"]}
    size = values["image_config"].get("image_size", TINY_IMAGE_SIZE)
    model = FlavaModel(FlavaConfig(**values)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = FlavaImageProcessor(
        size={"height": size, "width": size}, crop_size={"height": size, "width": size}
    )
    FlavaProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def make_tiny_fusion(folder: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """A tiny :class:`~mmship.adapters.fusion_model.MmshipFusionModel` folder (BERT + ViT
    into a linear head) with a ViT image processor and a BERT tokenizer."""
    from transformers import VisionTextDualEncoderProcessor, ViTImageProcessor

    from mmship.adapters.fusion_model import MmshipFusionConfig, MmshipFusionModel

    folder = _prepare(folder, seed)
    tokenizer = make_bert_tokenizer()
    values = merge_config(TINY_FUSION, overrides)
    values["text_config"] = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, **values["text_config"]}
    size = values["vision_config"].get("image_size", TINY_IMAGE_SIZE)
    model = MmshipFusionModel(MmshipFusionConfig(**values)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = ViTImageProcessor(size={"height": size, "width": size})
    VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def make_tiny_siglip(folder: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """A tiny ``SiglipModel`` folder with ``SiglipProcessor`` files: SigLIP's image processor
    (fixed resize, mean/std 0.5) and a SigLIP-shaped tokenizer (pad = eos, texts padded
    to ``max_position_embeddings``). The text head gives ``projection_size`` (32), the
    image tower's width, from a 40-wide text tower."""
    import torch
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
    )

    folder = _prepare(folder, seed)
    values = merge_config(TINY_SIGLIP, overrides)
    tokenizer = make_siglip_tokenizer(max_length=values["text_config"]["max_position_embeddings"])
    values["text_config"] = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": None,
        **values["text_config"],
    }
    size = values["vision_config"].get("image_size", TINY_IMAGE_SIZE)
    model = SiglipModel(SiglipConfig(**values)).eval()
    with torch.no_grad():  # trained-like values instead of the zeros SiglipModel starts from
        model.logit_scale.fill_(2.0)
        model.logit_bias.fill_(-1.5)
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = SiglipImageProcessor(size={"height": size, "width": size})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def make_full_clip(folder: str | Path, seed: int = 0) -> Path:
    """A full-size (ViT-B/32, 151M parameters) random-weight CLIP with the real tokenizer."""
    from mmship.testing.models import make_random_clip

    return make_random_clip(folder, seed=seed, real_tokenizer=True)
