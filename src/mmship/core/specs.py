"""Typed specs shared by every stage: tensors, graphs, preprocessing, scoring, serving params.

These are plain pydantic models so they serialise into the bundle manifest and into
``mmship adapters`` output unchanged. Shapes use ``-1`` for a dynamic axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Modality = Literal["image", "text", "embedding", "score"]
DType = Literal["float32", "float16", "int64", "int32", "uint8", "bytes"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]
Accelerator = Literal["cpu", "cuda", "tensorrt"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
ScoreKind = Literal["softmax", "sigmoid", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class TensorSpec(_Strict):
    """One input or output tensor of a model: its name, dtype, shape and meaning."""

    name: str
    dtype: DType
    shape: list[int] = Field(description="-1 marks a dynamic axis (axis 0 is the batch)")
    modality: Modality
    layout: Literal["NCHW"] | None = None
    description: str = ""

    @property
    def dynamic_axes(self) -> list[int]:
        """Indexes of the axes whose size is chosen per request."""
        return [i for i, size in enumerate(self.shape) if size == -1]

    def shape_text(self) -> str:
        """The shape as people write it: ``[-1, 3, 224, 224]``."""
        return "[" + ", ".join(str(s) for s in self.shape) + "]"


class GraphSpec(_Strict):
    """One exported graph (a tower): which inputs it takes and which outputs it gives."""

    name: str
    inputs: list[str]
    outputs: list[str]


class ImagePreprocessSpec(_Strict):
    """What the server does to an image so it matches the HF image processor exactly."""

    resize_shortest_edge: int | None = None
    resize_height: int | None = None
    resize_width: int | None = None
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"] = "bicubic"
    antialias: bool = True
    crop_height: int | None = None
    crop_width: int | None = None
    rescale_factor: float | None = 1 / 255
    mean: list[float] | None = None
    std: list[float] | None = None
    convert_rgb: bool = True
    layout: Literal["NCHW"] = "NCHW"

    @model_validator(mode="after")
    def _one_resize_mode(self) -> ImagePreprocessSpec:
        if self.resize_shortest_edge is not None and self.resize_height is not None:
            raise ValueError("give resize_shortest_edge or resize_height/width, not both")
        return self

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the pixel tensor this spec produces."""
        if self.crop_height and self.crop_width:
            return self.crop_height, self.crop_width
        if self.resize_height and self.resize_width:
            return self.resize_height, self.resize_width
        raise ValueError("image size is only known after a crop or a fixed resize")


class TextPreprocessSpec(_Strict):
    """How texts are tokenized: the tokenizer files plus padding and truncation."""

    tokenizer_dir: str = "processor"
    max_length: int
    padding: Literal["max_length", "longest"] = "max_length"
    truncation: bool = True
    lowercase: bool = False
    pad_ids: dict[str, int] = Field(
        default_factory=dict,
        description="the value each text input is padded with when texts of different lengths share a batch "
        "(empty in bundles built before mmship recorded it: the tokenizer's pad id for input_ids, 0 for the rest)",
    )
    vocab_size: int | None = Field(
        None, ge=1,
        description="token ids run from 0 to vocab_size - 1: the tokenizer's vocabulary (added tokens included), "
        "capped by the model's own text vocabulary (None in bundles built before mmship recorded it: the server "
        "reads it from tokenizer.json)",
    )


class PreprocessSpec(_Strict):
    """Everything the runtime needs to turn a raw image or text into model inputs."""

    image: ImagePreprocessSpec | None = None
    text: TextPreprocessSpec | None = None


class ScoringSpec(_Strict):
    """What a model means by an image-text score, declared by its adapter.

    * ``softmax`` (CLIP, FLAVA): ``logit_scale * cosine``; the probabilities of one image's
      labels are the softmax over the labels (they sum to 1);
    * ``sigmoid`` (SigLIP): ``logit_scale * cosine + logit_bias``; each label's probability is
      its own sigmoid (they need not sum to 1);
    * ``none`` (e.g. a fusion head): the model has no image-text score.

    ``logit_scale`` is the cosine's multiplier itself (``exp`` of the log-scale parameter a
    model stores). The cosine is taken between the ``image_embeds`` and ``text_embeds``
    outputs, and the logits are served as ``output``.
    """

    kind: ScoreKind = "none"
    logit_scale: float = Field(1.0, gt=0, description="the cosine's multiplier (exp of the model's log scale)")
    logit_bias: float = Field(0.0, description="added to the scaled cosine (sigmoid models)")
    image_embeds: str = Field("image_embeds", description="the image embedding output compared")
    text_embeds: str = Field("text_embeds", description="the text embedding output compared")
    output: str = Field("logits_per_image", description="the name the [n_images, n_texts] logits are served under")

    @property
    def scores(self) -> bool:
        """True when the model has an image-text score (``kind`` is not ``none``)."""
        return self.kind != "none"


class ServingParams(_Strict):
    """How a model is served: batching, precision, accelerator."""

    default_batch_size: int = Field(4, ge=1)
    max_batch_size: int = Field(32, ge=1)
    max_delay_ms: float = Field(5.0, ge=0)
    precision: Precision = "fp32"
    accelerator: Accelerator = "cpu"

    @model_validator(mode="after")
    def _batch_sizes_ordered(self) -> ServingParams:
        if self.default_batch_size > self.max_batch_size:
            raise ValueError(
                f"default_batch_size ({self.default_batch_size}) is larger than "
                f"max_batch_size ({self.max_batch_size}); raise max_batch_size or lower "
                "default_batch_size"
            )
        return self


class ExportedGraph(_Strict):
    """An ONNX graph on disk, produced by export and transformed by quantize/optimize."""

    name: str
    path: Path
    precision: Precision = "fp32"
    runtime: str = Field("onnxruntime", description="the inference runtime that loads this file")
    runtime_options: dict[str, Any] = Field(default_factory=dict, description="load options for the runtime")
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    opset: int | None = None
    notes: list[str] = Field(default_factory=list)
    report: dict[str, Any] = Field(default_factory=dict, description="figures measured by the stage")
