"""Build real (tiny) bundles through the build pipeline for tests."""

from __future__ import annotations

from pathlib import Path

from mmship.core.pipeline import BuildRequest, build
from mmship.core.stages import OptimizeOptions


def build_bundle(model_dir: Path, out: Path, precisions: tuple[str, ...] = ("fp32", "int8"), **kwargs) -> Path:
    """Build ``model_dir`` into ``out`` (optimization off, onnxruntime graphs only and no
    timing unless asked: tests time nothing, and the graph served is the same every run)."""
    request = BuildRequest(
        source=str(model_dir), out=out, precisions=list(precisions),
        optimize=kwargs.pop("optimize", OptimizeOptions(level="none")),
        runtimes=kwargs.pop("runtimes", ["onnxruntime"]), measure=kwargs.pop("measure", False), **kwargs,
    )
    return build(request)
