"""Build real (tiny) bundles through the build pipeline for tests."""

from __future__ import annotations

from pathlib import Path

from mmship.core.pipeline import BuildRequest, build
from mmship.core.stages import OptimizeOptions


def build_bundle(model_dir: Path, out: Path, precisions: tuple[str, ...] = ("fp32", "int8"), **kwargs) -> Path:
    """Build ``model_dir`` into ``out`` (optimization off: tests time nothing)."""
    request = BuildRequest(
        source=str(model_dir), out=out, precisions=list(precisions),
        optimize=kwargs.pop("optimize", OptimizeOptions(level="none")), **kwargs,
    )
    return build(request)
