"""Scoring mixins: what a dual encoder's image-text score means, read from its weights.

:class:`ContrastiveScoring` (CLIP, FLAVA: softmax of ``exp(logit_scale)`` times the cosine)
and :class:`SigmoidScoring` (SigLIP: one sigmoid of ``exp(logit_scale) * cosine +
logit_bias`` per label) give the adapter's :meth:`~mmship.core.adapter.Adapter.scoring`,
which the build records in the manifest and :mod:`mmship.scoring` applies at run time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mmship.core.model_source import safetensors_files
from mmship.core.specs import ScoringSpec

#: ``exp(logit_scale)`` of trained CLIP checkpoints (training clamps it at 100); used when
#: neither a model nor its weights are at hand.
DEFAULT_LOGIT_SCALE = 100.0
#: SigLIP's initial ``logit_scale`` (a log: ``exp`` gives 10) and ``logit_bias`` (the
#: paper's t' = log 10, b = -10); used when neither a model nor its weights are at hand.
SIGLIP_INIT_LOG_SCALE = math.log(10.0)
SIGLIP_INIT_BIAS = -10.0


def _read_scalar(model: Any | None, folder: Path | None, name: str) -> float | None:
    """The scalar parameter ``name`` of ``model``, else of the safetensors weights in
    ``folder`` (by name or ``.name`` suffix); ``None`` when neither holds it."""
    if model is not None and getattr(model, name, None) is not None:
        return float(getattr(model, name).detach().float().reshape(-1)[0].item())
    if folder is not None:
        from safetensors import safe_open

        for path in safetensors_files(Path(folder)):
            with safe_open(str(path), framework="numpy") as fh:
                names = [k for k in fh.keys() if k == name or k.endswith("." + name)]
                if names:
                    return float(fh.get_tensor(min(names, key=len)).reshape(-1)[0])
    return None


class ContrastiveScoring:
    """Softmax zero-shot scores for dual encoders (CLIP, FLAVA): ``exp(logit_scale)`` times
    the cosine, softmaxed over the labels.

    Mixed into adapters whose models carry a ``logit_scale`` parameter; :meth:`scoring`
    is what the build records in the manifest.
    """

    def logit_scale(self, model: Any | None = None, folder: Path | None = None) -> float:
        """The multiplier of the cosine, ``exp(logit_scale)``.

        Read from ``model.logit_scale`` when a model is given, else from the ``logit_scale``
        tensor of the safetensors weights in ``folder``; without either (or when neither
        holds one) it is :data:`DEFAULT_LOGIT_SCALE` (100, trained CLIP's value).
        """
        value = _read_scalar(model, folder, "logit_scale")
        return DEFAULT_LOGIT_SCALE if value is None else float(math.exp(value))

    def scoring(self, model: Any | None = None) -> ScoringSpec:
        """``softmax`` with the model's ``exp(logit_scale)``."""
        return ScoringSpec(kind="softmax", logit_scale=self.logit_scale(model))

    def score(self, image_embeds: Any, text_embeds: Any, logit_scale: float | None = None) -> Any:
        """``[n_images, n_texts]`` logits: ``logit_scale`` times the cosine of every pair.

        :param image_embeds: ``[n_images, dim]`` array (as the image graph returns it).
        :param text_embeds: ``[n_texts, dim]`` array.
        :param logit_scale: the multiplier; :data:`DEFAULT_LOGIT_SCALE` when ``None``.
        """
        from mmship.scoring import Scorer

        scale = DEFAULT_LOGIT_SCALE if logit_scale is None else float(logit_scale)
        return Scorer(ScoringSpec(kind="softmax", logit_scale=scale)).logits(image_embeds, text_embeds)


class SigmoidScoring:
    """Sigmoid zero-shot scores (SigLIP): ``exp(logit_scale) * cosine + logit_bias``, one
    independent sigmoid per label.

    Mixed into adapters whose models carry ``logit_scale`` and ``logit_bias`` parameters.
    """

    def scoring(self, model: Any | None = None, folder: Path | None = None) -> ScoringSpec:
        """``sigmoid`` with the model's ``exp(logit_scale)`` and ``logit_bias``, read from the
        model (or the weights in ``folder``); without either, SigLIP's initial values
        (``log(10)`` and ``-10``)."""
        scale = _read_scalar(model, folder, "logit_scale")
        bias = _read_scalar(model, folder, "logit_bias")
        return ScoringSpec(
            kind="sigmoid",
            logit_scale=float(math.exp(SIGLIP_INIT_LOG_SCALE if scale is None else scale)),
            logit_bias=SIGLIP_INIT_BIAS if bias is None else bias,
        )
