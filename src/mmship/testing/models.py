"""Random-weight model folders built from configs, saved like ``save_pretrained`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmship.testing.tokenizers import make_clip_tokenizer, make_real_clip_tokenizer


def make_random_clip(folder: str | Path, seed: int = 0, real_tokenizer: bool = False, **config_overrides: Any) -> Path:
    """A CLIP folder with random weights: ``CLIPConfig()`` defaults (ViT-B/32, 151M
    parameters) unless overridden, the CLIP image processor and an offline tokenizer:
    the small stand-in, or with ``real_tokenizer`` the true 49408-token CLIP tokenizer
    (:func:`~mmship.testing.tokenizers.make_real_clip_tokenizer`), so captions have
    their real length and the text tower's vocabulary matches it."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = make_real_clip_tokenizer() if real_tokenizer else make_clip_tokenizer()
    config = CLIPConfig(**config_overrides)
    if real_tokenizer:
        config.text_config.vocab_size = len(tokenizer)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(config.text_config, key, getattr(tokenizer, key))
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder
