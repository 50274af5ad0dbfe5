"""References for the zero-shot tests, computed directly from the Hugging Face models
(torch, the models' own processors), and small helpers to read a server's metrics."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image


def clip_features(folder: Path, images: list[bytes], prompts: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """``CLIPModel``'s image and text features (``get_*_features(...).pooler_output``) for
    ``images`` and ``prompts``, prepared by the model's own processor, and its
    ``exp(logit_scale)``."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(str(folder)).eval()
    pixels = AutoImageProcessor.from_pretrained(str(folder), backend="pil")(
        [Image.open(io.BytesIO(b)) for b in images], return_tensors="pt"
    )["pixel_values"]
    tokens = AutoTokenizer.from_pretrained(str(folder))(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        image = model.get_image_features(pixel_values=pixels).pooler_output.numpy()
        text = model.get_text_features(**tokens).pooler_output.numpy()
    return image.astype(np.float64), text.astype(np.float64), float(model.logit_scale.detach().exp())


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ensemble(text: np.ndarray, labels: int, templates: int) -> np.ndarray:
    """CLIP's ``zeroshot_classifier``: each prompt's features normalised, averaged per
    label (prompts ordered label by label), the mean normalised again."""
    return unit(unit(text).reshape(labels, templates, -1).mean(axis=1))


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def prompts_for(labels: list[str], templates: list[str]) -> list[str]:
    """Every label in every template, label by label (each template has one ``{}``)."""
    return [template.format(label) for label in labels for template in templates]


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the server's /metrics whose labels include ``labels`` (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
