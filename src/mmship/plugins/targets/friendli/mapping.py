"""deploy_config.yaml + bundle + settings -> a FriendliAI endpoint create request.

| deploy_config.yaml / setting        | FriendliAI create request                    |
|-------------------------------------|----------------------------------------------|
| ``compute.instance_type``            | ``instanceOptionId`` via :data:`INSTANCE_TYPES` |
| ``target.instance_option_id``        | ``instanceOptionId`` (overrides the table)   |
| ``compute.min_replicas`` (else 0)    | ``autoscalingPolicy.minReplica``             |
| ``compute.max_replicas``             | ``autoscalingPolicy.maxReplica`` (<= 10)     |
| ``autoscaling.cooldown``             | ``autoscalingPolicy.cooldownPeriod``         |
| ``target.max_batch_size``            | ``advanced.max_batch_size`` (only when set)  |
| ``target.max_token_count`` / ...     | ``advanced.*``                               |
| bundle source hub id / ``--hf-repo`` | ``hfModelRepo``                              |
| source revision / ``model.revision`` | ``hfModelRepoRevision``                      |
| ``target.endpoint_name`` / ``model.name`` / bundle name | ``name``                  |

``minReplica`` follows FriendliAI's default, 0 (the endpoint sleeps when idle and wakes on
the next request), unless ``compute.min_replicas`` is written in the config; the plan says
that 1 or more bills around the clock. ``model.serving_params.max_batch_size`` is the ONNX
serving batch and is not sent: FriendliAI's engine batches continuously and caps a batch
only when ``target.max_batch_size`` asks it to.

Not mapped (FriendliAI decides): ``autoscaling.metrics`` (it scales on request load),
``serving_params.*`` and ``runtime``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.auth import base_url_problem, check_token, foreign_host
from mmship.plugins.targets.friendli.client import DEFAULT_BASE_URL, TEAM_ENV, TOKEN_ENV

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig

PROJECT_ENV = "FRIENDLI_PROJECT"
MAX_REPLICAS = 10

#: FriendliAI instance option ids: every id the published create-endpoint definition lists
#: (``instanceOptionId`` in friendli-openapi's ``DedicatedEndpointCreateBody``).
INSTANCE_OPTIONS: dict[str, tuple[str, str]] = {
    "a100-80gb-x1": ("ShbPuOs4tfGb", "1x NVIDIA A100 80GB"),
    "a100-80gb-x2": ("mrAHuYt7T40o", "2x NVIDIA A100 80GB"),
    "a100-80gb-x4": ("JkNob0NMdoF3", "4x NVIDIA A100 80GB"),
    "a100-80gb-x8": ("sYH4kHmAcA5P", "8x NVIDIA A100 80GB"),
    "h100-x1": ("TwD5AqnBSVN0", "1x NVIDIA H100"),
    "h100-x2": ("zfTutSiLn0Hq", "2x NVIDIA H100"),
    "h100-x4": ("lfkRz5G48REc", "4x NVIDIA H100"),
    "h100-x8": ("GUA4qYFmsYz8", "8x NVIDIA H100"),
    "h200-x1": ("LnK1wTaKc7WO", "1x NVIDIA H200"),
    "h200-x2": ("Tu6GjBnfHPe4", "2x NVIDIA H200"),
    "h200-x4": ("OhTzYtZuomzI", "4x NVIDIA H200"),
    "h200-x8": ("ahBzWtOuomsI", "8x NVIDIA H200"),
    "b200-x1": ("8GiQTLKfJNOr", "1x NVIDIA B200"),
    "b200-x2": ("brTZGIuYgVrs", "2x NVIDIA B200"),
    "b200-x4": ("AFoZMFXZnAdD", "4x NVIDIA B200"),
    "b200-x8": ("drbc6G9FxJWZ", "8x NVIDIA B200"),
}

#: ``compute.instance_type`` sizes (the deploy config's vocabulary) -> instance options.
INSTANCE_TYPES: dict[str, str] = {
    "gpu.small": "a100-80gb-x1",
    "gpu.medium": "h100-x1",
    "gpu.large": "h200-x1",
    "gpu.xlarge": "h200-x2",
}

DEFAULT_INSTANCE = "gpu.small"


class FriendliSettings(BaseModel):
    """``target:`` keys for ``name: friendli`` (the token comes only from FRIENDLI_TOKEN).

    Validation errors never show input values (``hide_input_in_errors``): a key pasted into
    the wrong setting is not printed by ``str(ValidationError)``."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    project_id: str | None = Field(None, description=f"Friendli project id (default: ${PROJECT_ENV})")
    endpoint_name: str | None = Field(None, description="endpoint name (default: model.name or the bundle's name)")
    instance_type: str | None = Field(None, description="overrides compute.instance_type (gpu.small, h100-x1, ...)")
    instance_option_id: str | None = Field(None, description="a raw instanceOptionId; overrides the table")
    hf_repo: str | None = Field(None, description="Hugging Face repo to serve (default: the bundle's source)")
    hf_revision: str | None = Field(None, description="repo revision (default: the bundle's source revision)")
    base_url: str = Field(DEFAULT_BASE_URL, description="API base URL")
    team: str | None = Field(None, description=f"X-Friendli-Team header (default: ${TEAM_ENV})")
    max_batch_size: int | None = Field(
        None, ge=1, description="advanced.max_batch_size: caps the engine's continuous batching (default: FriendliAI's)"
    )
    max_token_count: int | None = Field(None, ge=1, description="advanced.max_token_count")
    max_input_length: int | None = Field(None, ge=1, description="advanced.max_input_length")
    tokenizer_add_special_tokens: bool = False
    tokenizer_skip_special_tokens: bool = True
    enable_content_logging: bool | None = None
    version_comment: str | None = Field(None, description="initialVersionComment")
    wait: bool = Field(True, description="wait until the endpoint is RUNNING")
    timeout_s: float = Field(1800.0, gt=0, description="how long to wait for RUNNING")
    poll_interval_s: float = Field(10.0, gt=0, description="seconds between status polls")
    request_timeout_s: float = Field(30.0, gt=0, description="timeout of each API call")
    retries: int = Field(3, ge=0, le=10, description="retries on 429/5xx/connection errors")
    force: bool = Field(False, description="deploy a bundle FriendliAI cannot serve (CLIP-style graphs)")

    @model_validator(mode="before")
    @classmethod
    def _no_token_in_settings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            secret = os.environ.get(TOKEN_ENV, "").strip()
            for key in list(data):
                text = str(key)
                if text in cls.model_fields:
                    continue
                if text.startswith("flp_") or (secret and secret in text):
                    raise ValueError(
                        "a setting's name looks like a FriendliAI key (not shown): mmship reads the key only "
                        f"from the {TOKEN_ENV} environment variable; remove it from the settings"
                    )
                if "token" in text.lower():
                    raise ValueError(
                        f"'{text}' is not a setting: mmship reads the FriendliAI token only from the "
                        f"{TOKEN_ENV} environment variable, never from files or flags; remove it"
                    )
        return data

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, value: str) -> str:
        problem = base_url_problem(value)
        if problem is not None:
            raise ValueError(f"{problem}; use https:// (the API is {DEFAULT_BASE_URL})")
        return value.rstrip("/")

    @field_validator("team")
    @classmethod
    def _printable_team(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_token(value, "team")
            except DeployError as exc:
                raise ValueError(exc.message) from None
        return value

    def resolved_project(self) -> str | None:
        """``project_id`` or ``$FRIENDLI_PROJECT``."""
        return self.project_id or os.environ.get(PROJECT_ENV) or None

    def resolved_team(self) -> str | None:
        """``team`` or ``$FRIENDLI_TEAM``."""
        return self.team or os.environ.get(TEAM_ENV) or None


@dataclass
class MappedRequest:
    """The create request plus, for the plan, where each value came from."""

    body: dict[str, Any]
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (request field, value, from)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (config key, why)
    billing: str = ""  # what the replica floor costs


def endpoint_name(settings: FriendliSettings, bundle: Bundle, config: DeployConfig) -> tuple[str, str]:
    """(name, where it came from), sanitised to letters, digits, ``-``, ``_`` and ``.``."""
    for value, origin in (
        (settings.endpoint_name, "target.endpoint_name"),
        (None if config.is_default else config.model.name, "model.name"),
        (bundle.manifest.name, "bundle name"),
    ):
        if value:
            return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-")[:63] or "mmship", origin
    return "mmship", "default"


def instance_option(settings: FriendliSettings, config: DeployConfig) -> tuple[str, str, str]:
    """(instanceOptionId, description, where it came from)."""
    if settings.instance_option_id:
        return settings.instance_option_id, "raw id", "target.instance_option_id"
    requested = settings.instance_type or config.compute.instance_type
    origin = "target.instance_type" if settings.instance_type else "compute.instance_type"
    if not requested:
        requested, origin = DEFAULT_INSTANCE, "default"
    key = INSTANCE_TYPES.get(requested, requested).lower()
    if key in INSTANCE_OPTIONS:
        option_id, description = INSTANCE_OPTIONS[key]
        return option_id, f"{requested} = {description}" if requested != key else description, origin
    if requested.startswith("cpu."):
        why = "FriendliAI Dedicated Endpoints run on GPUs only"
    else:
        why = "it is not in mmship's instance table"
    known = ", ".join([*INSTANCE_TYPES, *INSTANCE_OPTIONS])
    raise DeployError(
        f"instance type {requested!r} ({origin}) cannot be used on FriendliAI: {why}",
        hint=f"use one of {known}, or pass a raw id with --set instance_option_id=... (see docs/targets/friendli.md)",
    )


def hf_repo(settings: FriendliSettings, bundle: Bundle, config: DeployConfig) -> tuple[str, str, str | None, str]:
    """(repo, where it came from, revision, where that came from); a bundle built from a
    local folder needs ``hf_repo`` (``--hf-repo``)."""
    source = bundle.manifest.source
    if settings.hf_repo:
        repo, repo_from = settings.hf_repo, "--hf-repo / target.hf_repo"
        candidates = [(settings.hf_revision, "target.hf_revision"), (config.model.revision, "model.revision")]
    elif source.hub_id:
        repo, repo_from = source.hub_id, "bundle source"
        candidates = [(settings.hf_revision, "target.hf_revision"), (source.revision, "bundle source"),
                      (config.model.revision, "model.revision")]
    else:
        raise DeployError(
            f"bundle {bundle.manifest.name!r} was built from the local folder {source.path}, and FriendliAI "
            "serves models from Hugging Face repos",
            hint=f"upload the checkpoint (`huggingface-cli upload ORG/NAME {bundle.root}/hf`) and pass "
            "--hf-repo ORG/NAME (private repos need your HF token integrated in Friendli Suite)",
        )
    revision, revision_from = next(((v, o) for v, o in candidates if v), (None, "default branch"))
    return repo, repo_from, revision, revision_from


def user_set_min_replicas(config: DeployConfig) -> bool:
    """Whether ``compute.min_replicas`` is written in the config (not its default)."""
    return "min_replicas" in config.compute.model_fields_set


def replicas(config: DeployConfig) -> tuple[int, int, str]:
    """(minReplica, maxReplica, where minReplica came from): FriendliAI's default minimum 0
    unless ``compute.min_replicas`` is written."""
    compute = config.compute
    if user_set_min_replicas(config):
        low, origin = compute.min_replicas, "compute.min_replicas"
    else:
        low, origin = 0, "FriendliAI's default (compute.min_replicas not set)"
    high = compute.max_replicas
    if not 0 <= low <= high:
        raise DeployError(
            f"compute.min_replicas ({low}) must be between 0 and compute.max_replicas ({high})",
            hint="fix compute.min_replicas / compute.max_replicas in deploy_config.yaml",
        )
    if high > MAX_REPLICAS:
        raise DeployError(
            f"compute.max_replicas is {high}; FriendliAI scales an endpoint to at most {MAX_REPLICAS} replicas",
            hint=f"set compute.max_replicas to {MAX_REPLICAS} or less",
        )
    return low, high, origin


def billing_note(min_replicas: int, cooldown_s: int) -> str:
    """What the replica floor costs, for the plan."""
    if min_replicas >= 1:
        return (
            f"minReplica {min_replicas}: {min_replicas} replica(s) run and bill around the clock, even with no "
            "requests; set compute.min_replicas: 0 to let the endpoint sleep when idle"
        )
    return (
        f"minReplica 0: the endpoint sleeps (no replicas, no GPU billing) after {cooldown_s} s without requests "
        "and the next request wakes it (that request waits for the wake-up)"
    )


def build_create_request(settings: FriendliSettings, bundle: Bundle, config: DeployConfig, project_id: str) -> MappedRequest:
    """The body of ``POST /dedicated/beta/endpoint`` and the plan's mapping table."""
    scaling = config.autoscaling
    serving = config.serving_params(bundle)
    low, high, low_from = replicas(config)
    name, name_from = endpoint_name(settings, bundle, config)
    option_id, option_text, option_from = instance_option(settings, config)
    repo, repo_from, revision, revision_from = hf_repo(settings, bundle, config)
    cooldown = scaling.cooldown if scaling.cooldown is not None else 300
    advanced: dict[str, Any] = {
        "tokenizer_add_special_tokens": settings.tokenizer_add_special_tokens,
        "tokenizer_skip_special_tokens": settings.tokenizer_skip_special_tokens,
    }
    for key in ("max_batch_size", "max_token_count", "max_input_length", "enable_content_logging"):
        if getattr(settings, key) is not None:
            advanced[key] = getattr(settings, key)
    body: dict[str, Any] = {
        "projectId": project_id,
        "name": name,
        "instanceOptionId": option_id,
        "hfModelRepo": repo,
        "advanced": advanced,
        "autoscalingPolicy": {"minReplica": low, "maxReplica": high, "cooldownPeriod": cooldown},
    }
    if revision:
        body["hfModelRepoRevision"] = revision
    if settings.version_comment:
        body["initialVersionComment"] = settings.version_comment
    rows = [
        ("projectId", project_id, "target.project_id" if settings.project_id else f"${PROJECT_ENV}"),
        ("name", name, name_from),
        ("instanceOptionId", f"{option_id} ({option_text})", option_from),
        ("hfModelRepo", repo, repo_from),
        ("hfModelRepoRevision", revision or "(not set)", revision_from),
        ("autoscalingPolicy.minReplica", str(low), low_from),
        ("autoscalingPolicy.maxReplica", str(high), "compute.max_replicas"),
        ("autoscalingPolicy.cooldownPeriod", f"{cooldown} s", "autoscaling.cooldown" if scaling.cooldown is not None else "default"),
        *[(f"advanced.{k}", str(v), f"target.{k}") for k, v in advanced.items()],
    ]
    ignored = []
    if scaling.metrics:
        names = ", ".join(m.type for m in scaling.metrics)
        ignored.append(("autoscaling.metrics", f"{names}: FriendliAI autoscales on request load"))
    if "max_batch_size" not in advanced:
        ignored.append((
            "serving_params.max_batch_size",
            f"{serving.max_batch_size} is the ONNX serving batch; FriendliAI's engine batches continuously "
            "(set target.max_batch_size to cap it)",
        ))
    ignored.append(("serving_params.precision/accelerator", f"{serving.precision}/{serving.accelerator}: FriendliAI's engine chooses"))
    return MappedRequest(body=body, rows=rows, ignored=ignored, billing=billing_note(low, cooldown))


def describe_auth() -> str:
    """How the token is used, for the plan (never the token itself)."""
    state = "set" if os.environ.get(TOKEN_ENV) else "NOT SET"
    return f"${TOKEN_ENV} ({state}; a Personal API Key, sent only in the Authorization header)"


def describe_base_url(base_url: str) -> str:
    """The API address for the plan, with a warning when it is not FriendliAI's host."""
    host = foreign_host(base_url)
    if host is None:
        return base_url
    return f"{base_url}   (WARNING: {host} is not FriendliAI's API host; the token will be sent there)"
