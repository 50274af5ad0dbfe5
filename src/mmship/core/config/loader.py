"""Load and validate ``deploy_config.yaml``: every problem, with its path and line.

:func:`validate_text` collects issues (YAML syntax, unknown keys, wrong values, unknown
adapter or target names, target settings refused by the target's own ``settings_model``)
and returns them with the config when there are none; :func:`load_config` raises one
:class:`~mmship.core.errors.ConfigError` naming them all.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mmship.core.config.deploy_config import DeployConfig
from mmship.core.config.issues import (
    ConfigIssue,
    YamlPath,
    config_error,
    issues_from_validation,
    model_at,
    suggest,
)
from mmship.core.config.yaml_loader import LoadedYaml, YamlSyntaxError, load_yaml
from mmship.core.config.yaml_loader import _syntax_issue as yaml_syntax_issue
from mmship.core.errors import ConfigError

SECTIONS: tuple[str, ...] = tuple(DeployConfig.model_fields)
_INIT_HINT = "run `mmship init deploy_config.yaml --adapter NAME` for a commented starter file"


@dataclass
class Validation:
    """The outcome of validating a config text: the config, or the issues found."""

    source: str
    config: DeployConfig | None = None
    issues: list[ConfigIssue] = field(default_factory=list)
    loaded: LoadedYaml | None = None

    @property
    def ok(self) -> bool:
        """True when the text is a valid config."""
        return self.config is not None and not self.issues

    def error(self) -> ConfigError:
        """The issues as one :class:`ConfigError`."""
        return config_error(self.source, self.issues)


def _takes_text(model: type[BaseModel] | None, key: Any) -> bool:
    if model is None or not isinstance(key, str) or key not in model.model_fields:
        return False
    annotation = model.model_fields[key].annotation
    return str in (annotation, *typing.get_args(annotation))


def _restore_text(data: Any, loaded: LoadedYaml, root: type[BaseModel], prefix: YamlPath = ()) -> None:
    """Put back, as written, plain scalars YAML read as numbers where text is expected
    (``version: 1.10`` is ``"1.10"``, not ``1.1``)."""
    for path, raw in loaded.raw.items():
        if path[: len(prefix)] != prefix or len(path) <= len(prefix):
            continue
        rel = path[len(prefix):]
        if not _takes_text(model_at(root, rel[:-1]), rel[-1]):
            continue
        parent: Any = data
        for part in rel[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if isinstance(parent, dict) and isinstance(parent.get(rel[-1]), (int, float)) and not isinstance(parent.get(rel[-1]), bool):
            parent[rel[-1]] = raw


def _registry_issues(data: dict[str, Any], loaded: LoadedYaml, targets: Any, adapters: Any) -> tuple[list[ConfigIssue], BaseModel | None]:
    """Issues from the adapter and target registries, and the validated target settings."""
    issues: list[ConfigIssue] = []
    model = data.get("model")
    adapter = model.get("adapter") if isinstance(model, dict) else None
    if isinstance(adapter, str) and adapter != "auto" and adapters is not None and adapter not in adapters:
        guess = suggest(adapter, adapters.names())
        issues.append(
            ConfigIssue(
                path=("model", "adapter"),
                line=loaded.line(("model", "adapter")),
                message=f"no adapter called {adapter!r}" + (f"; did you mean {guess!r}?" if guess else "")
                + f" (adapters: {', '.join(adapters.names()) or 'none'}, or auto)",
                hint=f"write adapter: {guess}" if guess else "run `mmship adapters` to list them, or install the plugin that adds it",
            )
        )
    section = data.get("target")
    if not isinstance(section, dict) or targets is None:
        return issues, None
    name = section.get("name")
    if not isinstance(name, str):
        return issues, None  # the model validation reports it
    if name not in targets:
        guess = suggest(name, targets.names())
        issues.append(
            ConfigIssue(
                path=("target", "name"),
                line=loaded.line(("target", "name")),
                message=f"no target called {name!r}" + (f"; did you mean {guess!r}?" if guess else "")
                + f" (targets: {', '.join(targets.names()) or 'none'})",
                hint=f"write name: {guess}" if guess else "run `mmship plugins` to see the targets, or install the plugin that adds it",
            )
        )
        return issues, None
    cls = targets.get(name)
    settings = {k: v for k, v in section.items() if k != "name"}
    _restore_text(settings, loaded, cls.settings_model, ("target",))
    try:
        return issues, cls.validate_settings(settings)
    except ValidationError as exc:
        issues += issues_from_validation(exc, cls.settings_model, loaded.line, prefix=("target",))
        return issues, None


def _registries() -> tuple[Any, Any]:
    from mmship.core.manager import get_plugin_manager

    manager = get_plugin_manager()
    return manager.targets(), manager.adapters()


def validate_text(text: str, source: str = "deploy_config.yaml", *, registries: tuple[Any, Any] | None = None) -> Validation:
    """Validate a config text.

    :param text: the YAML text.
    :param source: the file's name, used in messages.
    :param registries: ``(targets, adapters)`` registries to check names against; by
        default those of the process-wide plugin manager.
    """
    result = Validation(source=source)
    try:
        loaded = load_yaml(text)
    except YamlSyntaxError as exc:
        result.issues.append(exc.issue)
        return result
    except yaml.YAMLError as exc:  # PyYAML's reader refuses some characters before parsing starts
        result.issues.append(yaml_syntax_issue(exc))
        return result
    result.loaded = loaded
    data = loaded.data
    if data is None:
        result.issues.append(ConfigIssue(path=(), line=None, message="the file is empty", hint=_INIT_HINT))
        return result
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r})"
        result.issues.append(
            ConfigIssue(
                path=(),
                line=loaded.lines.get((), 1),
                message=f"expected a mapping of sections ({', '.join(SECTIONS)}) at the top level, got {kind}",
                hint="start the file with `runtime:`, `compute:`, `model:` ... at the left margin; " + _INIT_HINT,
            )
        )
        return result
    result.issues += loaded.issues
    _restore_text(data, loaded, DeployConfig)
    targets, adapters = registries if registries is not None else _registries()
    registry_issues, settings = _registry_issues(data, loaded, targets, adapters)
    config: DeployConfig | None = None
    try:
        config = DeployConfig.model_validate(data)
    except ValidationError as exc:
        result.issues += issues_from_validation(exc, DeployConfig, loaded.line)
    result.issues += registry_issues
    if config is not None and not result.issues:
        config._source = source
        config._lines = dict(loaded.lines)
        if config.target is not None:
            config.target._validated = settings
        result.config = config
    return result


def read_config_text(path: Path) -> str:
    """The text of a config file, with clear errors for a missing or unreadable file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist", hint=_INIT_HINT.replace("deploy_config.yaml", str(path)))
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file", hint="pass the path of deploy_config.yaml")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", hint="check the path and its permissions") from None


def validate_file(path: Path, *, registries: tuple[Any, Any] | None = None) -> Validation:
    """Validate a config file (raises :class:`ConfigError` only when it cannot be read)."""
    return validate_text(read_config_text(path), str(path), registries=registries)


def load_config(path: Path | str, *, registries: tuple[Any, Any] | None = None) -> DeployConfig:
    """The validated config in ``path``; raises :class:`ConfigError` naming every problem
    (path, line, what was expected, what came, the fix)."""
    result = validate_file(Path(path), registries=registries)
    if not result.ok:
        raise result.error()
    assert result.config is not None
    return result.config
