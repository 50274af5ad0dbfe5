"""``deploy_config.yaml``: pydantic models, a line-aware YAML loader and clear errors.

``load_config(path)`` returns a :class:`DeployConfig` or raises one
:class:`~mmship.core.errors.ConfigError` naming every problem with its path and line
(``model.serving_params.precison (line 14): unknown key; did you mean 'precision'?``).
``validate_text`` / ``validate_file`` return the issues instead of raising.
"""

from __future__ import annotations

from mmship.core.config.deploy_config import DeployConfig, TargetSection
from mmship.core.config.issues import ConfigIssue, format_path
from mmship.core.config.loader import (
    Validation,
    load_config,
    validate_file,
    validate_text,
)
from mmship.core.config.models import (
    PERCENT_METRICS,
    Autoscaling,
    Compute,
    InputDecl,
    Metric,
    ModelSection,
    Runtime,
)

__all__ = [
    "PERCENT_METRICS",
    "Autoscaling",
    "Compute",
    "ConfigIssue",
    "DeployConfig",
    "InputDecl",
    "Metric",
    "ModelSection",
    "Runtime",
    "TargetSection",
    "Validation",
    "format_path",
    "load_config",
    "validate_file",
    "validate_text",
]
