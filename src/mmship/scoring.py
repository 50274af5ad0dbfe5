"""Image-text scores: the one place their math lives and a bundle's scoring is applied.

A model's adapter declares what its score means (:class:`~mmship.core.specs.ScoringSpec`,
recorded in the bundle manifest); :class:`Scorer` applies it for the server
(``logits_per_image``, model metadata, ``/classify``), the build's zero-shot check and
``mmship invoke``. The vector helpers (:func:`unit_rows`, :func:`cosine_matrix`,
:func:`row_cosines`, :func:`softmax`, :func:`sigmoid`) are the only copies in mmship.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mmship.core.errors import DimensionMismatchError
from mmship.core.specs import ScoringSpec
from mmship.payload.datatypes import v2_datatype

#: The multiplier bundles built before scoring was recorded used when their manifest had
#: no ``adapter_data.logit_scale`` (trained CLIP's ``exp(logit_scale)``, clamped at 100).
LEGACY_LOGIT_SCALE = 100.0
#: Norms below this count as zero (a zero vector stays zero instead of becoming NaN).
_TINY = 1e-12


def unit_rows(x: Any) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (float64; zero rows stay zero)."""
    array = np.asarray(x, dtype=np.float64)
    return array / np.maximum(np.linalg.norm(array, axis=-1, keepdims=True), _TINY)


def cosine_matrix(a: Any, b: Any) -> np.ndarray:
    """``[len(a), len(b)]`` cosine similarity of every row of ``a`` with every row of ``b``.

    :raises DimensionMismatchError: when the rows have different widths.
    """
    left, right = np.asarray(a), np.asarray(b)
    if left.shape[-1] != right.shape[-1]:
        raise DimensionMismatchError(
            f"image embeddings are {left.shape[-1]}-dim but text embeddings are {right.shape[-1]}-dim; "
            "they must match to be compared",
            hint="score embeddings of one model; make both projections give the same width",
        )
    return unit_rows(left) @ unit_rows(right).T


def row_cosines(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of matching rows of two ``[N, ...]`` arrays (float64)."""
    left = unit_rows(np.asarray(a).reshape(len(a), -1))
    right = unit_rows(np.asarray(b).reshape(len(b), -1))
    return (left * right).sum(axis=1)


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (float64, shifted by the maximum so large logits are safe)."""
    values = np.asarray(logits, dtype=np.float64)
    exp = np.exp(values - values.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def sigmoid(logits: Any) -> np.ndarray:
    """The logistic function, element-wise (float64, no overflow for large logits)."""
    values = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(values)
    positive = values >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-values[positive]))
    exp = np.exp(values[~positive])
    out[~positive] = exp / (1.0 + exp)
    return out


def legacy_scoring(adapter_data: Mapping[str, Any], outputs: list[str]) -> ScoringSpec:
    """The scoring a bundle built before it was recorded was served with: CLIP's softmax
    of ``adapter_data.logit_scale`` (default 100) times the cosine, for any model with
    ``image_embeds`` and ``text_embeds`` outputs; no score otherwise."""
    if {"image_embeds", "text_embeds"} <= set(outputs):
        scale = float(adapter_data.get("logit_scale", LEGACY_LOGIT_SCALE))
        return ScoringSpec(kind="softmax", logit_scale=scale)
    return ScoringSpec(kind="none")


class Scorer:
    """Applies one :class:`ScoringSpec`: logits from embeddings, probabilities from logits."""

    def __init__(self, spec: ScoringSpec | None) -> None:
        """:param spec: the model's scoring; ``None`` means it has none."""
        self.spec = spec or ScoringSpec(kind="none")

    @classmethod
    def for_manifest(cls, manifest: Any) -> Scorer:
        """The scorer of a :class:`~mmship.core.bundle.BundleManifest` (its ``scoring``, or
        :func:`legacy_scoring` for bundles built before it was recorded)."""
        if manifest.scoring is not None:
            return cls(manifest.scoring)
        return cls(legacy_scoring(manifest.adapter_data, [s.name for s in manifest.outputs]))

    @property
    def kind(self) -> str:
        """``softmax``, ``sigmoid`` or ``none``."""
        return self.spec.kind

    def applies(self, outputs: Mapping[str, Any] | list[str] | set[str]) -> bool:
        """True when the model scores and both compared embeddings are among ``outputs``."""
        return self.spec.scores and {self.spec.image_embeds, self.spec.text_embeds} <= set(outputs)

    def logits(self, image_embeds: Any, text_embeds: Any) -> np.ndarray:
        """``[n_images, n_texts]`` float32 logits: ``logit_scale * cosine + logit_bias``."""
        cos = cosine_matrix(image_embeds, text_embeds)
        return (self.spec.logit_scale * cos + self.spec.logit_bias).astype(np.float32)

    def add_logits(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``outputs`` plus the logits under ``spec.output`` when both embeddings are there."""
        if self.applies(outputs):
            outputs[self.spec.output] = self.logits(outputs[self.spec.image_embeds], outputs[self.spec.text_embeds])
        return outputs

    def probabilities(self, logits: Any) -> np.ndarray:
        """Per image (row), the probability of each text: softmax over the texts, or each
        text's own sigmoid.

        :raises ValueError: for a model without a score.
        """
        if self.spec.kind == "softmax":
            return softmax(logits, axis=-1)
        if self.spec.kind == "sigmoid":
            return sigmoid(logits)
        raise ValueError("this model has no image-text score")

    def top1(self, embeds: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """Index of the best text per image, or ``None`` when the model does not score or an
        embedding is missing."""
        if not self.applies(embeds):
            return None
        return np.argmax(self.logits(embeds[self.spec.image_embeds], embeds[self.spec.text_embeds]), axis=1)

    def output_metadata(self) -> dict[str, Any] | None:
        """The v2 metadata entry of the logits output (``None`` without a score)."""
        if not self.spec.scores:
            return None
        return {"name": self.spec.output, "datatype": v2_datatype(np.float32), "shape": [-1, -1]}

    def describe(self) -> dict[str, Any]:
        """The scoring as plain data (for metadata and responses)."""
        return self.spec.model_dump()
