"""The adapter contract: what one model family tells mmship about itself.

An adapter is a class registered through ``mmship_register_adapters``. It is built from
a model's ``config.json`` (a plain dict, so reading specs needs neither torch nor
transformers) and declares, in the spirit of optimum's per-model ONNX configs:

* which Hugging Face configs it matches (``model_types`` / ``architectures``);
* its input and output tensor specs (shape with ``-1`` for dynamic axes, layout, modality);
* the graphs (towers) it exports and which inputs/outputs each takes;
* the dimension rule (``check_dimensions``) with errors naming both numbers and the keys;
* its default serving params;
* what its image-text score means (``scoring``: softmax, sigmoid or none);
* how to load the model and which torch modules to export (heavy imports stay inside).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mmship.core.specs import GraphSpec, ScoringSpec, ServingParams, TensorSpec


@dataclass
class ExportModule:
    """A torch module to export as one graph, with example inputs in spec order."""

    graph: GraphSpec
    module: Any
    example_inputs: tuple[Any, ...]


@dataclass
class LoadOptions:
    """How to load a checkpoint: safetensors only, remote code off unless asked."""

    revision: str | None = None
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Adapter(ABC):
    """Base class for model-family adapters. Subclasses set the class attributes."""

    #: Unique short name, used in ``--adapter`` and ``model.adapter``.
    name: ClassVar[str]
    #: One line for ``mmship adapters``.
    description: ClassVar[str] = ""
    #: ``config.json`` ``model_type`` values this adapter serves.
    model_types: ClassVar[tuple[str, ...]] = ()
    #: ``config.json`` ``architectures`` entries this adapter serves.
    architectures: ClassVar[tuple[str, ...]] = ()
    #: A representative ``config.json`` (the family's default size), used to describe the
    #: adapter when no model is at hand.
    example_config: ClassVar[Mapping[str, Any]] = {}
    #: ``graphs``: the bundle carries ONNX graphs (served by mmship's runtime);
    #: ``weights``: it carries the safetensors checkpoint and processor for platforms that
    #: serve Hugging Face checkpoints themselves (e.g. vision-language chat models).
    bundle_kind: ClassVar[str] = "graphs"
    #: ``longest``: texts may be padded to the batch's longest text instead of the model's
    #: maximum (the attention mask makes the padding irrelevant); the build verifies that
    #: the embeddings are the same and falls back to ``max_length`` when they are not.
    text_padding: ClassVar[str] = "max_length"

    def __init__(self, hf_config: Mapping[str, Any]) -> None:
        self.hf_config: dict[str, Any] = dict(hf_config)

    @classmethod
    def matches(cls, hf_config: Mapping[str, Any]) -> bool:
        """True when this adapter serves a model with this ``config.json``."""
        if hf_config.get("model_type") in cls.model_types:
            return True
        return any(a in cls.architectures for a in hf_config.get("architectures") or ())

    @classmethod
    def from_example(cls) -> Adapter:
        """An instance describing the family's default-size model."""
        return cls(cls.example_config)

    @abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The model's inputs in the order the graphs take them."""

    @abstractmethod
    def output_specs(self) -> list[TensorSpec]:
        """The model's outputs (embeddings, scores)."""

    @abstractmethod
    def graph_specs(self) -> list[GraphSpec]:
        """The graphs exported for this model: one per tower, or one fused graph."""

    @abstractmethod
    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        """Raise :class:`~mmship.core.errors.DimensionMismatchError` when the config (and,
        when given, the checkpoint's tensor shapes) disagree on embedding dimensions."""

    def default_serving_params(self) -> ServingParams:
        """Serving defaults for this family; override to tune."""
        return ServingParams()

    @property
    def max_text_length(self) -> int | None:
        """The most tokens a text may have, or ``None`` for a model without text inputs."""
        return None

    def spec(self, name: str) -> TensorSpec:
        """The input or output spec called ``name``."""
        for spec in (*self.input_specs(), *self.output_specs()):
            if spec.name == name:
                return spec
        raise KeyError(name)

    def inputs_for_modality(self, modality: str) -> list[TensorSpec]:
        """Input specs of one modality (``image`` or ``text``)."""
        return [s for s in self.input_specs() if s.modality == modality]

    # Heavy parts: implemented by adapters that build bundles (they import torch inside).

    def load_model(self, folder: Path, options: LoadOptions) -> Any:
        """Load the eager model from a local folder (safetensors only)."""
        raise NotImplementedError(f"adapter {self.name!r} cannot load models")

    def export_modules(self, model: Any, batch_size: int = 2) -> list[ExportModule]:
        """Torch modules to export, one per graph, with example inputs."""
        raise NotImplementedError(f"adapter {self.name!r} cannot export")

    def scoring(self, model: Any | None = None) -> ScoringSpec:
        """What the model's image-text score means, recorded in the manifest's ``scoring``
        and applied by the server (``logits_per_image``, ``/classify``), the build's
        zero-shot check and ``mmship invoke``.

        :param model: the loaded model, to read learned values (logit scale and bias)
            from; ``None`` when describing the family without a model.
        :returns: ``kind="none"`` unless overridden: a model says what its score means.
        """
        return ScoringSpec(kind="none")

    def bundle_data(self, model: Any) -> dict[str, Any]:
        """Other values the runtime needs besides the graphs, stored in the manifest's
        ``adapter_data``."""
        return {}


def describe(adapter: Adapter) -> dict[str, Any]:
    """A plain-dict description of an adapter (for tables and JSON output)."""
    return {
        "name": adapter.name,
        "description": adapter.description,
        "model_types": list(adapter.model_types),
        "architectures": list(adapter.architectures),
        "inputs": [s.model_dump() for s in adapter.input_specs()],
        "outputs": [s.model_dump() for s in adapter.output_specs()],
        "graphs": [g.model_dump() for g in adapter.graph_specs()],
        "serving_params": adapter.default_serving_params().model_dump(),
        "scoring": adapter.scoring().model_dump(),
    }
