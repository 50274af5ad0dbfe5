"""Options handed to the build stages (export, quantize, optimize)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportOptions(_Options):
    """How graphs are exported."""

    opset: int = Field(17, ge=13)
    batch_size: int = Field(2, ge=2, description="example batch; must be > 1 so the batch axis stays dynamic")


class QuantizeOptions(_Options):
    """How a graph is quantized to int8 (fp16 takes no options)."""

    mode: Literal["dynamic", "static"] = "dynamic"
    per_channel: bool = False
    calibration_dir: Path | None = Field(None, description="feeds (.npz) for static int8")


class OptimizeOptions(_Options):
    """Graph optimization: onnxruntime's transformer optimizer and offline passes."""

    level: Literal["none", "basic", "extended", "all"] = "extended"
    min_speedup: float = Field(1.03, description="an optimization below this speed-up is not kept")
