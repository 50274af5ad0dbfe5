"""What the build stages are handed: options per stage and the build's shared context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mmship.core.adapter import Adapter
    from mmship.core.specs import PreprocessSpec, ScoringSpec


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
    calibration_dir: Path | None = Field(
        None, description="feeds (<graph>.npz) for static int8; default: the probe set of real photos and captions"
    )


class OptimizeOptions(_Options):
    """Graph optimization: onnxruntime's transformer optimizer and offline passes."""

    level: Literal["none", "basic", "extended", "all"] = "extended"
    min_speedup: float = Field(1.03, description="an optimization below this speed-up is not kept")


class ValidateOptions(_Options):
    """What the validate stage checks before a bundle is written."""

    batch_sizes: tuple[int, ...] = (1, 32)
    max_accuracy_loss: float = Field(0.005, ge=0, description="1 - mean cosine to fp32 of the worst output")
    optional: tuple[str, ...] = Field(
        (), description="variant keys left out (with the reason) rather than failing the build when they fail a check"
    )
    timed: tuple[str, ...] = Field((), description="variant keys timed to choose the fastest per tower (none: no choice)")
    timing_batch: int = Field(16, ge=1, description="the serving batch the variants are timed at (besides batch 1)")
    timing_runs: int = Field(3, ge=1, description="timed calls per batch size (after one warm-up call)")


@dataclass(frozen=True)
class BuildContext:
    """What every stage after ``align`` may need to know about the build.

    :param adapter: the model family's adapter (specs, scoring).
    :param preprocess: the aligned preprocessing spec.
    :param processor_dir: the folder holding the bundle's tokenizer/processor files.
    :param workdir: the build's scratch folder (removed after the build).
    :param scoring: what the model's image-text score means (the adapter's, read from the
        loaded model); ``None`` when it has none.
    """

    adapter: Adapter
    preprocess: PreprocessSpec
    processor_dir: Path
    workdir: Path
    scoring: ScoringSpec | None = None
