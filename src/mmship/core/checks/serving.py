"""Serving checks: dimensions, precision, accelerator, instance size, replicas, batching, autoscaling, runtime, target."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from mmship.core.adapter import Adapter
from mmship.core.checks.results import CheckResult
from mmship.core.config import DeployConfig
from mmship.core.config.sizing import (
    family_for,
    parse_instance_type,
    recommended_size,
    show_size,
    size_rank,
)
from mmship.core.errors import MmshipError
from mmship.core.model_source import (
    read_weight_shapes,
    weights_size_bytes,
)

#: Framework name in ``runtime.framework`` -> the distribution whose version is compared.
FRAMEWORK_DISTRIBUTIONS: dict[str, str] = {"pytorch": "torch", "onnxruntime": "onnxruntime", "tensorrt": "tensorrt"}


def check_dimensions(adapter: Adapter, folder: Path | None) -> list[CheckResult]:
    """``adapter.check_dimensions`` on the weights' tensor shapes (config only without weights)."""
    results: list[CheckResult] = []
    shapes = None
    if folder is not None:
        try:
            shapes = read_weight_shapes(folder)
        except MmshipError as exc:
            results.append(CheckResult("dimensions", "warn", f"weights not read: {exc.message}", exc.hint))
    try:
        adapter.check_dimensions(shapes)
    except MmshipError as exc:
        return [*results, CheckResult("dimensions", "error", exc.message, exc.hint)]
    outputs = ", ".join(f"{s.name} {s.shape[-1]}" for s in adapter.output_specs() if s.modality == "embedding")
    basis = "config.json and the weights" if shapes else ("config.json" if folder else "the example config")
    return [*results, CheckResult("dimensions", "ok", f"embedding dimensions agree in {basis}" + (f" ({outputs})" if outputs else ""))]


# --- config-only checks --------------------------------------------------------------------


def check_precision(config: DeployConfig) -> list[CheckResult]:
    """Precision vs accelerator: fp16 on CPU is no faster; int8 graphs are CPU graphs."""
    sp = config.model.serving_params
    where = config.where("model", "serving_params", "precision")
    if sp.precision == "fp16" and sp.accelerator == "cpu":
        return [CheckResult(
            "precision", "warn",
            f"{where}: fp16 on accelerator cpu is not faster than fp32 on CPUs (it only saves memory); "
            "expected fp32 or int8 for cpu, got fp16",
            "use precision: int8 (the fast one on CPU) or fp32; keep fp16 for accelerator cuda or tensorrt",
        )]
    if sp.precision == "int8" and sp.accelerator in ("cuda", "tensorrt"):
        return [CheckResult(
            "precision", "warn",
            f"{where}: int8 graphs are dynamically quantized (MatMulInteger), which {sp.accelerator} does not accelerate; "
            f"expected fp16 or fp32 for {sp.accelerator}, got int8",
            f"use precision: fp16 with accelerator {sp.accelerator}, or accelerator: cpu for int8",
        )]
    return [CheckResult("precision", "ok", f"{sp.precision} on {sp.accelerator}")]


def check_accelerator(config: DeployConfig) -> list[CheckResult]:
    """The accelerator needs the right instance family (a GPU for cuda and tensorrt)."""
    sp, compute = config.model.serving_params, config.compute
    instance = parse_instance_type(compute.instance_type)
    where = config.where("compute", "instance_type")
    if instance is None:
        return [CheckResult("accelerator", "ok", f"{sp.accelerator}" + (f" on {compute.instance_type}" if compute.instance_type else ""))]
    if instance.family == "cpu" and sp.accelerator != "cpu":
        return [CheckResult(
            "accelerator", "error",
            f"{config.where('model', 'serving_params', 'accelerator')}: {sp.accelerator} needs a GPU, but {where} is "
            f"{compute.instance_type}; expected a gpu instance, got a cpu one",
            f"set instance_type: gpu.{instance.size}, or accelerator: cpu",
        )]
    if "gpu" in instance.family and sp.accelerator == "cpu":
        return [CheckResult(
            "accelerator", "warn",
            f"{config.where('model', 'serving_params', 'accelerator')}: cpu on {compute.instance_type} leaves the GPU idle",
            f"set accelerator: cuda (or tensorrt), or instance_type: cpu.{instance.size}",
        )]
    return [CheckResult("accelerator", "ok", f"{sp.accelerator} on {compute.instance_type}")]


def check_instance_size(config: DeployConfig, folder: Path | None) -> list[CheckResult]:
    """The size the weights call for (< 1 GB medium, 1-3 GB large, more xlarge) vs
    ``compute.instance_type``."""
    if folder is None:
        return [CheckResult("instance size", "skip", "no model folder, so the weights' size is unknown", "pass --model DIR")]
    try:
        size = weights_size_bytes(folder)
    except MmshipError as exc:
        return [CheckResult("instance size", "skip", f"weights' size unknown: {exc.message}", exc.hint)]
    rec = recommended_size(size)
    chosen = config.compute.instance_type
    family = family_for(config.model.serving_params.accelerator)
    rule = "under 1 GB medium, 1-3 GB large, more xlarge"
    if chosen is None:
        return [CheckResult("instance size", "ok", f"weights {show_size(size)}: recommended {family}.{rec} ({rule}); compute.instance_type is not set",
                            f"set instance_type: {family}.{rec}")]
    instance = parse_instance_type(chosen)
    if instance is None:
        return [CheckResult("instance size", "ok", f"weights {show_size(size)}: recommended size {rec} ({rule}); "
                            f"{chosen} has no size to compare")]
    if instance.rank < size_rank(rec):
        return [CheckResult(
            "instance size", "warn",
            f"{config.where('compute', 'instance_type')}: weights are {show_size(size)}, so a {rec} instance is recommended "
            f"({rule}); expected {instance.family}.{rec} or larger, got {chosen}",
            f"set instance_type: {instance.family}.{rec}",
        )]
    return [CheckResult("instance size", "ok", f"weights {show_size(size)}: {chosen} fits (recommended: {rec}; {rule})")]


def check_replicas(config: DeployConfig) -> list[CheckResult]:
    """``min_replicas <= max_replicas`` (also enforced on load) and autoscaling room."""
    low, high = config.compute.min_replicas, config.compute.max_replicas
    if low > high:
        return [CheckResult(
            "replicas", "error",
            f"{config.where('compute', 'min_replicas')}: min_replicas ({low}) is larger than max_replicas ({high}); expected min <= max",
            f"raise max_replicas to at least {low}, or lower min_replicas",
        )]
    if low == high and config.autoscaling.metrics:
        return [CheckResult(
            "replicas", "warn",
            f"{config.where('compute', 'max_replicas')}: autoscaling metrics are set but min_replicas == max_replicas ({low}): nothing to scale",
            f"raise max_replicas above {low}, or remove autoscaling.metrics",
        )]
    note = "; scales to zero when idle (the first request then waits for a replica)" if low == 0 else ""
    return [CheckResult("replicas", "ok", f"{low} to {high} replicas{note}")]


def check_batching(config: DeployConfig) -> list[CheckResult]:
    """``default_batch_size <= max_batch_size`` (also enforced on load)."""
    sp = config.model.serving_params
    if sp.default_batch_size > sp.max_batch_size:
        return [CheckResult(
            "batching", "error",
            f"{config.where('model', 'serving_params', 'default_batch_size')}: default_batch_size ({sp.default_batch_size}) is larger than "
            f"max_batch_size ({sp.max_batch_size}); expected default <= max",
            f"raise max_batch_size to at least {sp.default_batch_size}, or lower default_batch_size",
        )]
    return [CheckResult("batching", "ok", f"default {sp.default_batch_size} <= max {sp.max_batch_size}, waits up to {sp.max_delay_ms:g} ms")]


def check_autoscaling(config: DeployConfig) -> list[CheckResult]:
    """A summary of the autoscaling policy."""
    scaling = config.autoscaling
    parts = [f"{m.type} {m.threshold_text()}" for m in scaling.metrics]
    if scaling.cooldown is not None:
        parts.append(f"cooldown {scaling.cooldown} s")
    return [CheckResult("autoscaling", "ok", ", ".join(parts) if parts else "no metrics: targets use their own defaults")]


def check_runtime(config: DeployConfig) -> list[CheckResult]:
    """``runtime.version`` vs the framework installed here (a torch mismatch once broke
    the team's quantization)."""
    runtime = config.runtime
    dist = FRAMEWORK_DISTRIBUTIONS.get(runtime.framework, runtime.framework)
    try:
        installed = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return [CheckResult("runtime", "ok", f"{runtime.framework} {runtime.version or ''}".strip() + f" ({dist} is not installed here)")]
    if runtime.version is None:
        return [CheckResult("runtime", "ok", f"{runtime.framework} (installed: {dist} {installed})")]
    want = runtime.version.split(".")[:2]
    have = re.split(r"[.+]", installed)[:2]
    if want != have[: len(want)]:
        return [CheckResult(
            "runtime", "warn",
            f"{config.where('runtime', 'version')}: expected {dist} {runtime.version}, but {installed} is installed here; "
            "mmship builds with the installed version",
            f'write version: "{".".join(have)}", or install {dist}=={runtime.version}.*',
        )]
    return [CheckResult("runtime", "ok", f"{runtime.framework} {runtime.version} (installed: {installed})")]


def check_target(config: DeployConfig) -> list[CheckResult]:
    """The target section (validated by the target's settings model on load)."""
    if config.target is None:
        return [CheckResult("target", "skip", "no target section", "pass --target NAME to `mmship deploy`, or add target: {name: ...}")]
    keys = ", ".join(config.target.settings()) or "defaults"
    return [CheckResult("target", "ok", f"{config.target.name}: settings valid ({keys})")]
