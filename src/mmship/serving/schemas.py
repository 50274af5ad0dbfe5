"""Request and response bodies of the people-facing routes (/embed, /classify)."""

from __future__ import annotations

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
    model: str
    labels: list[str]
    probs: list[float]
    top: str
    truncated: list[bool] = Field(default_factory=list)
