"""Graph feeds: random examples for timing and warm-up, and the probe set of real photos
and captions for accuracy and calibration."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from mmship.core.specs import PreprocessSpec, TensorSpec
from mmship.preprocess.tokens import ZERO_PADDED_OUTPUTS


def example_feeds(inputs: list[TensorSpec], batch: int = 1, sequence: int = 16) -> dict[str, np.ndarray]:
    """Feeds for timing and warm-up: random floats, unpadded texts (small token ids, an
    ``attention_mask`` of ones, ``token_type_ids`` of zeros, as the tokenizer gives them)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in inputs:
        shape = [batch if i == 0 else (sequence if s == -1 else s) for i, s in enumerate(spec.shape)]
        dtype = np.dtype(spec.dtype)
        if dtype.kind not in "iu":
            feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
        elif spec.name in ZERO_PADDED_OUTPUTS:  # no padding: a mask is all 1, type ids all 0
            feeds[spec.name] = np.full(shape, int(spec.name == "attention_mask"), dtype)
        else:
            feeds[spec.name] = rng.integers(1, 16, shape).astype(dtype)  # ids in every vocabulary
    return feeds


def load_probe_set() -> tuple[list[bytes], list[str], str]:
    """The shipped probe photos (encoded bytes), their labels and the prompt template."""
    folder = resources.files("mmship.data") / "probe"
    meta = json.loads((folder / "probe.json").read_text())
    images = [(folder / item["file"]).read_bytes() for item in meta["items"]]
    labels = [item["label"] for item in meta["items"]]
    return images, labels, meta["template"]


def probe_feeds(inputs: list[TensorSpec], preprocess: PreprocessSpec, processor_dir: Path) -> dict[str, np.ndarray]:
    """Graph feeds for the probe set: images through the aligned pixel pipeline, label
    prompts through the bundle's tokenizer (item i pairs image i with label i)."""
    from mmship.preprocess.pixels import ImagePreprocessor
    from mmship.preprocess.tokens import TextTokenizer

    images, labels, template = load_probe_set()
    feeds: dict[str, np.ndarray] = {}
    modalities = {s.modality for s in inputs}
    if "image" in modalities and preprocess.image is not None:
        pixels = ImagePreprocessor(preprocess.image)(images)
        feeds.update({s.name: pixels for s in inputs if s.modality == "image"})
    if "text" in modalities and preprocess.text is not None:
        tokens = TextTokenizer(processor_dir, preprocess.text)([template.format(label) for label in labels])
        for spec in inputs:
            if spec.modality == "text":
                feeds[spec.name] = tokens[spec.name]
    return feeds
