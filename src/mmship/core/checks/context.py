"""What the checks compare against: the model folder and the adapter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmship.core.adapter import Adapter
from mmship.core.checks.results import CheckResult
from mmship.core.config import DeployConfig
from mmship.core.errors import MmshipError
from mmship.core.model_source import (
    read_hf_config,
)


@dataclass
class ModelContext:
    """What the checks compare against: a model folder and/or an adapter instance."""

    folder: Path | None = None
    adapter: Adapter | None = None
    notes: list[CheckResult] = field(default_factory=list)


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
