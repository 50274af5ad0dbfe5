"""From the command line to a target instance, shared by ``deploy``, ``deployments`` and
``invoke``: choose the target, turn the flags targets declare (:class:`TargetOption`) into
click options, and validate the target's settings (config ``target`` section, then the
declared flags and ``--set key=value`` on top).
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from mmship.core.cli.console import print_warning
from mmship.core.config import DeployConfig, TargetSection
from mmship.core.errors import DeployError
from mmship.core.registry import TargetRegistry
from mmship.core.target import Target, TargetOption

#: The ``--help`` panel the targets' own flags are listed in.
PANEL = "Target options"
#: Prefix of the Python parameter names the declared flags get (kept apart from the command's own).
PARAM_PREFIX = "target_flag__"


def target_registry() -> TargetRegistry:
    """The registered targets."""
    from mmship.core.manager import get_plugin_manager

    return get_plugin_manager().targets()


def declared_flag_params(registry: TargetRegistry) -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option) per flag the registered targets declare;
    the help names the targets that take it and what it does for each."""
    params = []
    for option, owners in registry.options():
        help_text = "; ".join(f"{name}: {declared.help}" for name, declared in owners)
        info = typer.Option(
            False if option.is_flag else None, *option.decls, help=escape(help_text) + ".", rich_help_panel=PANEL
        )
        annotation: Any = bool if option.is_flag else (str | None)
        params.append(inspect.Parameter(_param_name(option), inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation))
    return params


def declared_flag_values(kwargs: dict[str, Any], registry: TargetRegistry) -> dict[str, Any]:
    """The declared flags the user gave: ``{"--out": "repo"}`` (switches only when on)."""
    given = {}
    for option, _ in registry.options():
        value = kwargs.get(_param_name(option))
        if value not in (None, False):
            given[option.flag] = value
    return given


def _param_name(option: TargetOption) -> str:
    return PARAM_PREFIX + option.flag.lstrip("-").replace("-", "_")


def flag_overrides(cls: type[Target], given: dict[str, Any], registry: TargetRegistry) -> dict[str, Any]:
    """Settings for ``cls`` from the declared flags given; a flag ``cls`` does not declare
    is an error naming the targets that take it."""
    declared = {option.flag: option for option in cls.cli_options}
    overrides: dict[str, Any] = {}
    for flag, value in given.items():
        option = declared.get(flag)
        if option is None:
            takers = [name for o, owners in registry.options() if o.flag == flag for name, _ in owners]
            raise DeployError(
                f"target {cls.name!r} takes no {flag}",
                hint=f"drop {flag} (it is for: {', '.join(takers) or 'no target'}); {cls.name} takes: "
                + (", ".join(o.flag for o in cls.cli_options) or "no flags") + " and --set KEY=VALUE",
            )
        overrides[option.setting] = True if option.is_flag else value
    return overrides


def parse_sets(values: list[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}`` (values read as YAML scalars).

    A malformed argument is never echoed (``--set $FRIENDLI_TOKEN`` must not print the
    token): the error gives its length, or only the key when the value is missing."""
    result: dict[str, Any] = {}
    for position, item in enumerate(values, start=1):
        key, sep, raw = item.partition("=")
        if not sep:
            raise DeployError(
                f"--set expects key=value; argument {position} of --set has no '=' "
                f"({len(item)} characters, not shown: it may be a secret)",
                hint="write e.g. --set project_id=abc123",
            )
        if not key.strip():
            raise DeployError(
                f"--set expects key=value; argument {position} of --set has nothing before '='",
                hint="write e.g. --set project_id=abc123",
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def format_validation(exc: ValidationError) -> str:
    """Validation errors as ``key: message`` pairs, without echoing input values (a
    misplaced secret must not be printed)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        parts.append(f"{where}: {err.get('msg', '')}")
    return "; ".join(parts)


def choose_target(name: str | None, config: DeployConfig | None, registry: TargetRegistry) -> type[Target]:
    """The target class named by ``--target`` or the config's ``target.name``."""
    chosen = name or (config.target_name if config is not None else None)
    if not chosen:
        raise DeployError(
            "no deploy target chosen",
            hint=f"pass --target NAME or set target.name in deploy_config.yaml (targets: {', '.join(registry.names())})",
        )
    return registry.get(chosen)


def build_settings(cls: type[Target], section: TargetSection | None, overrides: dict[str, Any]) -> BaseModel:
    """The target's settings: the config's ``target`` keys (when they are for this
    target; keys written empty are left to the target's default), then ``overrides``."""
    data: dict[str, Any] = {}
    if section is not None:
        written = {k: v for k, v in section.settings().items() if v is not None}
        if section.name == cls.name:
            data.update(written)
        elif written:
            print_warning(
                f"deploy_config.yaml's target section is for {section.name!r}; its keys are not used for target {cls.name!r}"
            )
    data.update(overrides)
    try:
        return cls.validate_settings(data)
    except ValidationError as exc:
        fields = ", ".join(cls.settings_model.model_fields) or "none"
        raise DeployError(
            f"invalid settings for target {cls.name!r}: {format_validation(exc)}",
            hint=f"fix the target section of deploy_config.yaml or the --set values; {cls.name} takes: {fields}",
        ) from None


def invoke_mode(cls: type[Target], mode: str | None, option: str) -> str:
    """``mode`` checked against the target's ``invoke_modes`` (``None``: the first)."""
    modes = cls.invoke_modes
    if mode is None or mode == "auto":
        return modes[0]
    if mode not in modes:
        raise DeployError(
            f"target {cls.name!r} invokes with {' or '.join(modes)}, not {mode!r}",
            hint="use " + " or ".join(f"{option} {m}" for m in modes),
        )
    return mode
