"""Input checks: declared shapes against the adapter's specs (NHWC, rank, sizes, text length)."""

from __future__ import annotations

from mmship.core.adapter import Adapter
from mmship.core.checks.results import CheckResult
from mmship.core.config import DeployConfig, InputDecl
from mmship.core.errors import MmshipError
from mmship.core.specs import TensorSpec


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
