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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmship.core.checks.context import ModelContext, resolve_context
from mmship.core.checks.inputs import (
    check_input,
    check_inputs,
    expected_shape,
    match_input,
    text_limit,
)
from mmship.core.checks.results import STATUSES, CheckResult, Status, counts, has_errors
from mmship.core.checks.serving import (
    check_accelerator,
    check_autoscaling,
    check_batching,
    check_dimensions,
    check_instance_size,
    check_precision,
    check_replicas,
    check_runtime,
    check_target,
)
from mmship.core.config import DeployConfig, format_path, validate_file
from mmship.core.errors import MmshipError

__all__ = [
    "STATUSES", "CheckResult", "ModelContext", "Status", "check_file", "check_input", "check_inputs",
    "counts", "expected_shape", "has_errors", "match_input", "resolve_context", "run_checks", "text_limit",
]


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
