"""The commented starter ``deploy_config.yaml`` that ``mmship init`` writes.

Filled from an adapter (its input specs and default serving params, from the model's
``config.json`` when a model folder is given, else from the adapter's example config),
the registered targets and, with a model folder, the weights' size. The text is
validated before it is written, and written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from string import Template
from typing import Any

from pydantic import BaseModel, ValidationError

from mmship.core.adapter import Adapter
from mmship.core.config.loader import validate_text
from mmship.core.config.sizing import family_for, recommended_size
from mmship.core.errors import ConfigError, MmshipError
from mmship.core.specs import TensorSpec

TEMPLATE = "deploy_config.template.yaml"


@dataclass
class StarterInput:
    """One ``model.inputs`` entry of the starter file."""

    name: str
    spec: TensorSpec
    shape: list[int]


def starter_inputs(adapter: Adapter) -> list[StarterInput]:
    """One input per modality, named by it (``image``, ``text``) with the shape a client
    declares; inputs of other modalities by their own names. A text's dynamic token axis
    shows the model's maximum (``[-1, 77]``)."""
    from mmship.core.checks import expected_shape, text_limit

    entries: list[StarterInput] = []
    seen: set[str] = set()
    for spec in adapter.input_specs():
        if spec.modality in ("image", "text"):
            if spec.modality in seen:
                continue
            seen.add(spec.modality)
            name: str = spec.modality
        else:
            name = spec.name
        limit = text_limit(adapter) if spec.modality == "text" else None
        entries.append(StarterInput(name=name, spec=spec, shape=expected_shape(spec, limit)))
    return entries


def _inputs_block(entries: list[StarterInput]) -> str:
    lines = []
    for entry in entries:
        shape = "[" + ", ".join(str(s) for s in entry.shape) + "]"
        note = f"{entry.spec.name}: {entry.spec.description}" if entry.spec.description else entry.spec.name
        lines += [
            f"    - name: {entry.name}  # -> {note}",
            "      type: tensor",
            f"      shape: {shape}",
        ]
    return "\n".join(lines) if lines else "    []"


def _yaml_text(value: str) -> str:
    """``value`` as a YAML scalar that reads back as this exact text."""
    if re.fullmatch(r"[A-Za-z_./~][\w./~-]*", value) and value.lower() not in {"null", "true", "false", "yes", "no", "on", "off"}:
        return value
    return json.dumps(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return str(value)


def _needs_nothing(settings_model: type[BaseModel]) -> bool:
    try:
        settings_model.model_validate({})
    except ValidationError:
        return False
    return True


def _target_block(targets: Any, chosen: str | None) -> tuple[str, str]:
    """``(block, names)``: the target section (commented out when no target can be used
    without settings) and the registered target names."""
    names = targets.names() if targets is not None else []
    listed = ", ".join(names) or "none installed"
    if chosen is None:
        chosen = next((n for n in ("local", *names) if n in names and _needs_nothing(targets.get(n).settings_model)), None)
    if chosen is None:
        return "# target:\n#   name: local", listed
    cls = targets.get(chosen)
    usable = _needs_nothing(cls.settings_model)
    lines = [f"target:  # {cls.description}" if cls.description else "target:", f"  name: {chosen}"]
    fields = cls.settings_model.model_fields
    if fields:
        lines.append(f"  # {chosen}'s settings (uncomment to change a default):")
    for key, info in fields.items():
        if key == "name":  # the section's name is the target's; this setting cannot be set here
            continue
        default = "..." if info.is_required() else _scalar(info.get_default(call_default_factory=True))
        comment = f"  # {info.description}" if info.description else ""
        lines.append(f"  # {key}: {default}{comment}")
    block = "\n".join(lines)
    if not usable:
        block = "\n".join("# " + line for line in lines)
        block = f"# {chosen} needs settings (the keys marked ...): fill them in and uncomment\n" + block
    return block, listed


def _framework_version() -> str:
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return 'null  # e.g. "2.13"'
    return '"' + ".".join(version.split("+")[0].split(".")[:2]) + '"'


def render_starter(
    adapter: Adapter,
    *,
    file_name: str = "deploy_config.yaml",
    model_path: str | None = None,
    model_name: str | None = None,
    weights_bytes: int | None = None,
    targets: Any = None,
    target: str | None = None,
) -> str:
    """The starter file's text for ``adapter`` (not yet validated)."""
    serving = adapter.default_serving_params()
    entries = starter_inputs(adapter)
    size = recommended_size(weights_bytes) if weights_bytes is not None else "medium"
    target_block, target_names = _target_block(targets, target)
    if model_path is not None:
        source_line = f"path: {_yaml_text(model_path)}"
    else:
        source_line = "# path: ./my-model  (or hub_id: openai/clip-vit-base-patch32)"
    values = {
        "adapter": adapter.name,
        "adapter_description": adapter.description or "no description",
        "file_name": file_name,
        "check_model": "" if model_path else " --model MODEL_DIR",
        "framework": "pytorch",
        "version": _framework_version(),
        "instance_type": f"{family_for(serving.accelerator)}.{size}",
        "model_name": _yaml_text(model_name or adapter.name),
        "source_line": source_line,
        "input_names": ", ".join(s.name for s in adapter.input_specs()),
        "inputs": _inputs_block(entries),
        "default_batch_size": serving.default_batch_size,
        "max_batch_size": serving.max_batch_size,
        "max_delay_ms": _scalar(float(serving.max_delay_ms)),
        "precision": serving.precision,
        "accelerator": serving.accelerator,
        "target_names": target_names,
        "target_block": target_block,
    }
    template = resources.files("mmship.core.templates").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return Template(template).substitute(values).rstrip("\n") + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: readers see the old file or the whole new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_starter(
    path: Path,
    adapter_name: str | None = None,
    *,
    model: Path | None = None,
    force: bool = False,
    target: str | None = None,
) -> tuple[Path, Adapter]:
    """Write the starter config for an adapter (named, or detected from ``model``'s
    ``config.json``); refuses to replace an existing file unless ``force``."""
    from mmship.core.manager import get_plugin_manager
    from mmship.core.model_source import read_hf_config, weights_size_bytes

    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to replace it, or give another file name")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder", hint="give a file name such as deploy_config.yaml")
    manager = get_plugin_manager()
    adapters, targets = manager.adapters(), manager.targets()
    if target is not None:
        targets.get(target)  # unknown name: an error with suggestions
    hf_config = read_hf_config(model) if model is not None else None
    if adapter_name is None:
        if hf_config is None:
            raise ConfigError(
                "which adapter? give --adapter NAME or --model DIR",
                hint=f"adapters: {', '.join(adapters.names()) or 'none installed'} (`mmship adapters` describes them)",
            )
        cls = adapters.detect(hf_config, where=str(Path(model or ".") / "config.json"))
    else:
        cls = adapters.get(adapter_name)
    adapter = cls(hf_config) if hf_config is not None else cls.from_example()
    weights = None
    if model is not None:
        try:
            weights = weights_size_bytes(model)
        except MmshipError:
            weights = None
    text = render_starter(
        adapter,
        file_name=path.name,
        model_path=str(model) if model is not None else None,
        model_name=Path(model).resolve().name if model is not None else None,
        weights_bytes=weights,
        targets=targets,
        target=target,
    )
    check = validate_text(text, str(path), registries=(targets, adapters))
    if not check.ok:  # a bug in the template or an adapter's specs: never write a bad file
        error = check.error()
        raise ConfigError(f"the starter file for adapter {cls.name!r} does not validate: {error.message}",
                          hint="report this; meanwhile start from docs' example config")
    write_atomic(path, text)
    return path, adapter
