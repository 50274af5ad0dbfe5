"""What deploy targets read from ``deploy_config.yaml``, in one place.

Targets take the validated :class:`mmship.core.config.DeployConfig` (or ``None`` when the
user deployed with defaults). These helpers read the sections targets map (compute,
serving params, autoscaling, the target section) with the defaults a missing config or
section implies, so each target maps settings without caring whether a config was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmship.core.specs import ServingParams


@dataclass
class Compute:
    """``compute``: instance type and replica bounds."""

    instance_type: str | None = None
    min_replicas: int = 1
    max_replicas: int = 1


@dataclass
class Metric:
    """One autoscaling metric: its type and its threshold in percent (or a raw number)."""

    type: str
    threshold: float | None


@dataclass
class Autoscaling:
    """``autoscaling``: metrics and the cooldown in seconds (``None``: not set)."""

    metrics: list[Metric] = field(default_factory=list)
    cooldown_s: int | None = None


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    value = getattr(obj, key, default)
    return default if value is None else value


def _section(config: Any, name: str) -> Any:
    return _get(config, name) if config is not None else None


def compute(config: Any) -> Compute:
    """The compute section, with one replica when nothing is said."""
    section = _section(config, "compute")
    low = int(_get(section, "min_replicas", 1))
    high = int(_get(section, "max_replicas", max(low, 1)))
    return Compute(instance_type=_get(section, "instance_type"), min_replicas=low, max_replicas=high)


def parse_threshold(value: Any) -> float | None:
    """``"60%"`` -> 60.0; ``60`` -> 60.0; ``None`` -> None (numbers are taken as written:
    percent for utilisation metrics, requests in flight for ``request_count``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return float(value.strip().rstrip("%").strip())
    return float(value)


def autoscaling(config: Any) -> Autoscaling:
    """The autoscaling section: metrics (thresholds in percent) and cooldown."""
    section = _section(config, "autoscaling")
    metrics = []
    for item in _get(section, "metrics", []) or []:
        kind = _get(item, "type")
        if kind is not None:
            kind = getattr(kind, "value", kind)
            metrics.append(Metric(type=str(kind), threshold=parse_threshold(_get(item, "threshold"))))
    cooldown = _get(section, "cooldown")
    return Autoscaling(metrics=metrics, cooldown_s=int(cooldown) if cooldown is not None else None)


def serving_params(bundle: Any, config: Any) -> ServingParams:
    """The bundle's serving params, with the fields the config sets explicitly on top."""
    base: ServingParams = bundle.manifest.serving_params
    given = _get(_section(config, "model"), "serving_params")
    if given is None:
        return base
    if isinstance(given, ServingParams):
        update = {name: getattr(given, name) for name in given.model_fields_set}
    else:
        update = {k: v for k, v in dict(given).items() if v is not None}
    return ServingParams.model_validate({**base.model_dump(), **update})


def model_field(config: Any, key: str) -> Any:
    """``model.<key>`` (``name``, ``revision``, ``path``, ...) or ``None``."""
    return _get(_section(config, "model"), key)


def target_section(config: Any) -> tuple[str | None, dict[str, Any]]:
    """``target``: its ``name`` and the target-specific keys (everything else)."""
    section = _section(config, "target")
    if section is None:
        return None, {}
    if isinstance(section, dict):
        data = dict(section)
    else:
        getter = getattr(section, "settings", None)
        if callable(getter):
            data = {"name": getattr(section, "name", None), **dict(getter())}
        else:
            data = section.model_dump(exclude_none=True) if hasattr(section, "model_dump") else dict(vars(section))
            data.update(getattr(section, "model_extra", None) or {})
    name = data.pop("name", None)
    return name, {k: v for k, v in data.items() if v is not None}
