"""``mmship check``: a deploy config against its adapter, its model and itself.

:func:`check_file` validates the file (every validation problem becomes an ``error``
row) and then :func:`run_checks` compares the config with the adapter and the model:
input shapes (channels-last images, wrong rank, wrong sizes, texts longer than the model
takes), embedding dimensions (``adapter.check_dimensions`` on the weights' shapes),
precision vs accelerator, accelerator vs instance family, instance size vs the weights'
size, replicas, batching, autoscaling and the runtime version. Results are plain
:class:`CheckResult` rows; the CLI only renders them.

The adapter comes from the registry (``model.adapter``, or detected from the model's
``config.json``); core imports no adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from mmship.core.adapter import Adapter
from mmship.core.config import DeployConfig, InputDecl, format_path, validate_file
from mmship.core.config.sizing import (
    family_for,
    parse_instance_type,
    recommended_size,
    show_size,
    size_rank,
)
from mmship.core.errors import MmshipError
from mmship.core.model_source import (
    read_hf_config,
    read_weight_shapes,
    weights_size_bytes,
)
from mmship.core.specs import TensorSpec

Status = Literal["ok", "warn", "error", "skip"]
STATUSES: tuple[str, ...] = ("ok", "warn", "error", "skip")
#: Framework name in ``runtime.framework`` -> the distribution whose version is compared.
FRAMEWORK_DISTRIBUTIONS: dict[str, str] = {"pytorch": "torch", "onnxruntime": "onnxruntime", "tensorrt": "tensorrt"}


@dataclass
class CheckResult:
    """One row of ``mmship check``: what was checked, how it went, why, and the fix."""

    name: str
    status: Status
    message: str
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict (``--json``)."""
        return {"name": self.name, "status": self.status, "message": self.message, "hint": self.hint}


@dataclass
class ModelContext:
    """What the checks compare against: a model folder and/or an adapter instance."""

    folder: Path | None = None
    adapter: Adapter | None = None
    notes: list[CheckResult] = field(default_factory=list)


def has_errors(results: list[CheckResult]) -> bool:
    """True when any row is an error."""
    return any(r.status == "error" for r in results)


def counts(results: list[CheckResult]) -> dict[str, int]:
    """Rows per status."""
    return {s: sum(1 for r in results if r.status == s) for s in STATUSES}


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def text_limit(adapter: Adapter) -> int | None:
    """The most tokens a text may have for this adapter's model, when it says
    (``max_text_length``, as the transformers-based adapters expose it)."""
    try:
        value = adapter.max_text_length
    except MmshipError:
        return None
    return value if isinstance(value, int) and value > 0 else None


def expected_shape(spec: TensorSpec, limit: int | None) -> list[int]:
    """The shape a client should declare for ``spec``: a text's dynamic token axis shows
    the model's maximum (``[-1, 77]``)."""
    shape = list(spec.shape)
    if spec.modality == "text" and limit and len(shape) == 2 and shape[1] == -1:
        shape[1] = limit
    return shape


def _axis_names(spec: TensorSpec) -> list[str]:
    if spec.layout == "NCHW" and len(spec.shape) == 4:
        return ["batch", "channels", "height", "width"]
    if spec.modality == "text" and len(spec.shape) == 2:
        return ["batch", "tokens"]
    return ["batch", *(f"axis {i}" for i in range(1, len(spec.shape)))]


# --- model folder and adapter ------------------------------------------------------------


def _model_folder(config: DeployConfig, model_dir: Path | None, base_dir: Path | None) -> tuple[Path | None, list[CheckResult]]:
    if model_dir is not None:
        folder = Path(model_dir)
        if not folder.is_dir():
            return None, [CheckResult("model", "error", f"--model {folder} is not a folder", "pass the folder save_pretrained wrote")]
        return _hf_folder(folder), [CheckResult("model", "ok", f"model folder {folder} (--model)")]
    path = config.model.path
    if path is None:
        if config.model.hub_id:
            return None, [CheckResult(
                "model", "skip", f"model.hub_id {config.model.hub_id} is not fetched by check",
                "pass --model DIR (a local copy) to check the weights too",
            )]
        return None, [CheckResult("model", "skip", "no model.path and no --model: checked against the adapter's example config",
                                  "pass --model DIR to check the real model")]
    candidates = [Path(path).expanduser()]
    if base_dir is not None and not Path(path).is_absolute():
        candidates.append(base_dir / path)
    for folder in candidates:
        if folder.is_dir():
            return _hf_folder(folder), [CheckResult("model", "ok", f"model folder {folder} ({config.where('model', 'path')})")]
    return None, [CheckResult(
        "model", "warn", f"{config.where('model', 'path')}: {path} does not exist here; checked against the adapter's example config",
        "build or save the model there first, or pass --model DIR",
    )]


def _hf_folder(folder: Path) -> Path:
    """A bundle keeps the Hugging Face files under ``hf/``; a model folder at its top."""
    if not (folder / "config.json").is_file() and (folder / "hf" / "config.json").is_file():
        return folder / "hf"
    return folder


def _guess_adapter(config: DeployConfig, registry: Any) -> type[Adapter] | None:
    """The one adapter whose name is a word of ``model.name`` (else of the hub id, else
    of the path): ``clip-multimodal`` -> ``clip``."""
    for text in (config.model.name, config.model.hub_id, config.model.path):
        words = set(re.split(r"[^a-z0-9]+", (text or "").lower()))
        hits = [cls for cls in registry if cls.name.lower() in words]
        if len(hits) == 1:
            return hits[0]
    return None


def resolve_context(config: DeployConfig, *, model_dir: Path | None = None, base_dir: Path | None = None, registry: Any = None) -> ModelContext:
    """The model folder (``--model``, else ``model.path`` when it exists) and the adapter
    (``model.adapter``, else detected from ``config.json``, else guessed from the model's
    name), with rows saying which were used."""
    if registry is None:
        from mmship.core.manager import get_plugin_manager

        registry = get_plugin_manager().adapters()
    folder, notes = _model_folder(config, model_dir, base_dir)
    context = ModelContext(folder=folder, notes=notes)
    hf_config: dict[str, Any] | None = None
    if folder is not None:
        if (folder / "config.json").is_file():
            try:
                hf_config = read_hf_config(folder)
            except MmshipError as exc:
                notes.append(CheckResult("adapter", "error", exc.message, exc.hint))
                return context
        else:
            notes.append(CheckResult("model", "warn", f"{folder} has no config.json; checked against the adapter's example config"))
    where = config.where("model", "adapter") if config.line_of("model", "adapter") else "model.adapter"
    try:
        if config.model.adapter != "auto":
            cls = registry.get(config.model.adapter)
            if hf_config is not None and not cls.matches(hf_config):
                notes.append(CheckResult(
                    "adapter", "warn",
                    f"{where} is {cls.name!r} but config.json's model_type is {hf_config.get('model_type')!r}, "
                    f"which it does not declare",
                    "set model.adapter: auto to detect it, or check that this is the right model",
                ))
        elif hf_config is not None:
            cls = registry.detect(hf_config, where=str(folder / "config.json") if folder else "config.json")
        else:
            guessed = _guess_adapter(config, registry)
            if guessed is None:
                notes.append(CheckResult(
                    "adapter", "skip",
                    f"model.adapter is auto and there is no model folder to detect it from (adapters: {', '.join(registry.names()) or 'none'})",
                    "set model.adapter: NAME or pass --model DIR",
                ))
                return context
            cls = guessed
            notes.append(CheckResult(
                "adapter", "warn", f"model.adapter is auto and there is no model folder: guessed {cls.name!r} from the model's name",
                f"set model.adapter: {cls.name} (or pass --model DIR)",
            ))
    except MmshipError as exc:
        notes.append(CheckResult("adapter", "error", f"{where}: {exc.message}", exc.hint))
        return context
    context.adapter = cls(hf_config) if hf_config is not None else cls.from_example()
    if not any(n.name == "adapter" for n in notes):
        origin = "config.json" if hf_config is not None else "its example config"
        notes.append(CheckResult("adapter", "ok", f"{cls.name} ({origin}): {cls.description}".rstrip(": ")))
    return context


# --- inputs ------------------------------------------------------------------------------


def match_input(decl: InputDecl, specs: list[TensorSpec]) -> TensorSpec | None:
    """The adapter input a config input means: by name (``pixel_values``), else by
    modality (``image`` -> the image input, ``text`` -> the first text input)."""
    for spec in specs:
        if spec.name == decl.name:
            return spec
    word = decl.name.lower().rstrip("s")
    modality = word if word in ("image", "text") else (decl.type if decl.type in ("image", "text") else None)
    if modality is None:
        return None
    return next((s for s in specs if s.modality == modality), None)


def _shape_problems(decl: InputDecl, spec: TensorSpec, limit: int | None, where: str) -> list[CheckResult]:
    name = f"input {decl.name}"
    got = list(decl.shape or [])
    want = expected_shape(spec, limit)
    exp, came = _shape(want), _shape(got)
    label = f"{spec.modality} input {decl.name!r}"
    if len(got) != len(spec.shape):
        return [CheckResult(name, "error", f"{where}: {label} has {len(got)} axes but the model takes {len(spec.shape)}: "
                            f"expected {exp}, got {came}", f"write shape: {exp}")]
    if spec.layout == "NCHW" and len(got) == 4:
        channels = spec.shape[1]
        if channels > 0 and got[3] == channels and got[1] != channels:
            return [CheckResult(
                name, "error",
                f"{where}: {label} is channels-last (NHWC): expected {exp} (NCHW), got {came}",
                f"transpose the images to NCHW, channels first (ToTensor does; numpy: x.transpose(0, 3, 1, 2)), "
                f"and write shape: {exp}",
            )]
    axes = _axis_names(spec)
    wrong, loose = [], []
    for i in range(1, len(got)):
        size, model_size = got[i], spec.shape[i]
        if model_size == -1:
            if spec.modality == "text" and limit and size > limit:
                return [CheckResult(
                    name, "error",
                    f"{where}: {label} allows {size} tokens per text but the model takes at most {limit}: expected {exp}, got {came}",
                    f"write shape: {exp} (the server truncates longer texts to {limit} tokens)",
                )]
        elif size == -1:
            loose.append(f"{axes[i]} is dynamic but the model takes exactly {model_size}")
        elif size != model_size:
            wrong.append(f"{axes[i]}: expected {model_size}, got {size}")
    if wrong:
        fix = f"write shape: {exp}"
        if spec.modality == "image" and spec.layout == "NCHW":
            fix += f"; the server resizes and crops images to {spec.shape[2]}x{spec.shape[3]} for this model (or use a model trained at the size you want)"
        return [CheckResult(name, "error", f"{where}: {label} expected {exp}, got {came} ({'; '.join(wrong)})", fix)]
    results = []
    if loose:
        results.append(CheckResult(name, "warn", f"{where}: {label}: {'; '.join(loose)}; expected {exp}, got {came}", f"write shape: {exp}"))
    if got and got[0] != -1 and spec.shape[0] == -1:
        results.append(CheckResult(
            name, "warn", f"{where}: {label} fixes the batch axis at {got[0]}; expected -1 (dynamic) so requests can be batched, got {came}",
            f"write shape: {_shape([-1, *got[1:]])}",
        ))
    return results


def check_input(index: int, decl: InputDecl, adapter: Adapter, config: DeployConfig) -> list[CheckResult]:
    """Rows for one ``model.inputs`` entry against the adapter's input specs."""
    name = f"input {decl.name}"
    specs = adapter.input_specs()
    spec = match_input(decl, specs)
    if spec is None:
        listed = ", ".join(f"{s.name} ({s.modality})" for s in specs)
        return [CheckResult(
            name, "error",
            f"{config.where('model', 'inputs', index, 'name')}: the {adapter.name} adapter has no input {decl.name!r}; its inputs: {listed}",
            "name the input after one of them, or after its modality (image, text)",
        )]
    results: list[CheckResult] = []
    if decl.type in ("image", "text") and decl.type != spec.modality:
        results.append(CheckResult(
            name, "error", f"{config.where('model', 'inputs', index, 'type')}: expected type tensor or {spec.modality} "
            f"for {spec.name}, got {decl.type}", f"write type: {spec.modality} (or tensor)",
        ))
    if decl.dtype is not None and decl.dtype != spec.dtype:
        results.append(CheckResult(
            name, "error", f"{config.where('model', 'inputs', index, 'dtype')}: expected dtype {spec.dtype} for {spec.name}, got {decl.dtype}",
            f"write dtype: {spec.dtype} (or leave it out)",
        ))
    limit = text_limit(adapter) if spec.modality == "text" else None
    if decl.shape is not None:
        results += _shape_problems(decl, spec, limit, config.where("model", "inputs", index, "shape"))
    if not results:
        shown = decl.shape_text() if decl.shape is not None else f"raw {decl.type}s (the server preprocesses them)"
        target = spec.name if spec.name == decl.name else f"{decl.name} -> {spec.name}"
        results.append(CheckResult(name, "ok", f"{target} {shown} matches {_shape(expected_shape(spec, limit))}"))
    return results


def check_inputs(config: DeployConfig, adapter: Adapter) -> list[CheckResult]:
    """Rows for every declared input (one ok row when none is declared)."""
    if not config.model.inputs:
        listed = ", ".join(f"{s.name} {_shape(s.shape)}" for s in adapter.input_specs())
        return [CheckResult("inputs", "ok", f"none declared; clients send the {adapter.name} adapter's inputs: {listed}")]
    results: list[CheckResult] = []
    for index, decl in enumerate(config.model.inputs):
        results += check_input(index, decl, adapter, config)
    return results


# --- dimensions ----------------------------------------------------------------------------


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


def _guarded(name: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run one check; an adapter plugin's failure becomes an error row, not a crash."""
    try:
        return check()
    except MmshipError as exc:
        return [CheckResult(name, "error", exc.message, exc.hint)]
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not hide the other checks
        return [CheckResult(name, "error", f"check failed: {type(exc).__name__}: {exc}", "report this to the adapter's authors")]


def run_checks(
    config: DeployConfig,
    *,
    model_dir: Path | None = None,
    base_dir: Path | None = None,
    registry: Any = None,
) -> list[CheckResult]:
    """Every check of a validated config, in display order.

    :param config: the validated config.
    :param model_dir: the model folder (``--model``); default ``model.path`` when it exists.
    :param base_dir: where relative ``model.path`` values are also looked for (the config
        file's folder); they are first looked for from the working directory.
    :param registry: the adapter registry; default the plugin manager's.
    """
    results = [CheckResult("config", "ok", f"{config.source or 'config'} is valid")]
    for name, check in (
        ("runtime", lambda: check_runtime(config)),
        ("replicas", lambda: check_replicas(config)),
        ("batching", lambda: check_batching(config)),
        ("precision", lambda: check_precision(config)),
        ("accelerator", lambda: check_accelerator(config)),
        ("autoscaling", lambda: check_autoscaling(config)),
        ("target", lambda: check_target(config)),
    ):
        results += _guarded(name, check)
    context = resolve_context(config, model_dir=model_dir, base_dir=base_dir, registry=registry)
    results += context.notes
    results += _guarded("instance size", lambda: check_instance_size(config, context.folder))
    if context.adapter is not None:
        adapter = context.adapter
        results += _guarded("inputs", lambda: check_inputs(config, adapter))
        results += _guarded("dimensions", lambda: check_dimensions(adapter, context.folder))
    return results


def check_file(path: Path, *, model_dir: Path | None = None, registry: Any = None) -> list[CheckResult]:
    """Validate ``path`` and, when it is valid, :func:`run_checks` it. Validation problems
    are ``error`` rows named by their YAML path (raises ``ConfigError`` only when the file
    cannot be read)."""
    validation = validate_file(Path(path))
    if not validation.ok:
        rows = [
            CheckResult(format_path(issue.path) or "config", "error", issue.text(), issue.hint)
            for issue in sorted(validation.issues, key=lambda i: i.line or 0)
        ]
        rows.append(CheckResult("model checks", "skip", "not run: fix the config errors first"))
        return rows
    assert validation.config is not None
    return run_checks(validation.config, model_dir=model_dir, base_dir=Path(path).resolve().parent, registry=registry)
