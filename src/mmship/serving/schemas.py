"""Request and response bodies of the people-facing routes (/embed, /classify)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EmbedRequest(BaseModel):
    """Embed images and/or texts."""

    model_config = ConfigDict(extra="forbid")
    images: list[str] = Field(default_factory=list, description="base64 or data-URI encoded JPEG/PNG/WebP")
    texts: list[str] = Field(default_factory=list)
    normalize: bool = True


class EmbedResponse(BaseModel):
    model: str
    dim: int
    image_embeds: list[list[float]] | None = None
    text_embeds: list[list[float]] | None = None
    embeds: dict[str, list[list[float]]] = Field(default_factory=dict, description="other outputs (fusion, FLAVA)")
    truncated: list[bool] = Field(default_factory=list)


class ClassifyRequest(BaseModel):
    """Zero-shot classification of one image against labels."""

    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="base64 or data-URI encoded JPEG/PNG/WebP")
    labels: list[str] = Field(min_length=1)
    template: str = "a photo of a {}"


class ClassifyResponse(BaseModel):
    """Each label's probability for the image, under the model's scoring."""

    model: str
    labels: list[str]
    probs: list[float]
    top: str
    scoring: Literal["softmax", "sigmoid"] = Field(
        description="softmax: probs sum to 1 over the labels (CLIP); sigmoid: each label's own probability (SigLIP)"
    )
    truncated: list[bool] = Field(default_factory=list)
