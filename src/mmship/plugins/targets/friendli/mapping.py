"""deploy_config.yaml + bundle + settings -> a FriendliAI endpoint create request.

| deploy_config.yaml / setting        | FriendliAI create request                    |
|-------------------------------------|----------------------------------------------|
| ``compute.instance_type``            | ``instanceOptionId`` via :data:`INSTANCE_TYPES` |
| ``target.instance_option_id``        | ``instanceOptionId`` (overrides the table)   |
| ``compute.min_replicas``             | ``autoscalingPolicy.minReplica``             |
| ``compute.max_replicas``             | ``autoscalingPolicy.maxReplica`` (<= 10)     |
| ``autoscaling.cooldown``             | ``autoscalingPolicy.cooldownPeriod``         |
| ``model.serving_params.max_batch_size`` | ``advanced.max_batch_size``               |
| ``target.max_token_count`` / ...     | ``advanced.*``                               |
| bundle source hub id / ``--hf-repo`` | ``hfModelRepo``                              |
| source revision / ``model.revision`` | ``hfModelRepoRevision``                      |
| ``target.endpoint_name`` / ``model.name`` / bundle name | ``name``                  |

Not mapped (FriendliAI decides): ``autoscaling.metrics`` (it scales on request load),
``serving_params.precision`` / ``accelerator`` / ``max_delay_ms`` and ``runtime``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.client import DEFAULT_BASE_URL, TEAM_ENV, TOKEN_ENV

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig

PROJECT_ENV = "FRIENDLI_PROJECT"
MAX_REPLICAS = 10

#: FriendliAI instance option ids (from the create-endpoint API reference, friendli 0.16.5).
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
    """``target:`` keys for ``name: friendli`` (the token comes only from FRIENDLI_TOKEN)."""

    model_config = ConfigDict(extra="forbid")
    project_id: str | None = Field(None, description=f"Friendli project id (default: ${PROJECT_ENV})")
    endpoint_name: str | None = Field(None, description="endpoint name (default: model.name or the bundle's name)")
    instance_type: str | None = Field(None, description="overrides compute.instance_type (gpu.small, h100-x1, ...)")
    instance_option_id: str | None = Field(None, description="a raw instanceOptionId; overrides the table")
    hf_repo: str | None = Field(None, description="Hugging Face repo to serve (default: the bundle's source)")
    hf_revision: str | None = Field(None, description="repo revision (default: the bundle's source revision)")
    base_url: str = Field(DEFAULT_BASE_URL, description="API base URL")
    team: str | None = Field(None, description=f"X-Friendli-Team header (default: ${TEAM_ENV})")
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
            for key in list(data):
                if "token" in str(key).lower() and key not in cls.model_fields:
                    raise ValueError(
                        f"'{key}' is not a setting: mmship reads the FriendliAI token only from the "
                        f"{TOKEN_ENV} environment variable, never from files or flags; remove it"
                    )
        return data

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


def build_create_request(settings: FriendliSettings, bundle: Bundle, config: DeployConfig, project_id: str) -> MappedRequest:
    """The body of ``POST /dedicated/beta/endpoint`` and the plan's mapping table."""
    compute = config.compute
    scaling = config.autoscaling
    serving = config.serving_params(bundle)
    if not 0 <= compute.min_replicas <= compute.max_replicas:
        raise DeployError(
            f"compute.min_replicas ({compute.min_replicas}) must be between 0 and compute.max_replicas "
            f"({compute.max_replicas})",
            hint="fix compute.min_replicas / compute.max_replicas in deploy_config.yaml",
        )
    if compute.max_replicas > MAX_REPLICAS:
        raise DeployError(
            f"compute.max_replicas is {compute.max_replicas}; FriendliAI scales an endpoint to at most {MAX_REPLICAS} replicas",
            hint=f"set compute.max_replicas to {MAX_REPLICAS} or less",
        )
    name, name_from = endpoint_name(settings, bundle, config)
    option_id, option_text, option_from = instance_option(settings, config)
    repo, repo_from, revision, revision_from = hf_repo(settings, bundle, config)
    cooldown = scaling.cooldown if scaling.cooldown is not None else 300
    advanced: dict[str, Any] = {
        "max_batch_size": serving.max_batch_size,
        "tokenizer_add_special_tokens": settings.tokenizer_add_special_tokens,
        "tokenizer_skip_special_tokens": settings.tokenizer_skip_special_tokens,
    }
    for key in ("max_token_count", "max_input_length", "enable_content_logging"):
        if getattr(settings, key) is not None:
            advanced[key] = getattr(settings, key)
    body: dict[str, Any] = {
        "projectId": project_id,
        "name": name,
        "instanceOptionId": option_id,
        "hfModelRepo": repo,
        "advanced": advanced,
        "autoscalingPolicy": {
            "minReplica": compute.min_replicas,
            "maxReplica": compute.max_replicas,
            "cooldownPeriod": cooldown,
        },
    }
    if revision:
        body["hfModelRepoRevision"] = revision
    if settings.version_comment:
        body["initialVersionComment"] = settings.version_comment
    sp_from = (
        "model.serving_params.max_batch_size" if "max_batch_size" in config.model.serving_params.model_fields_set
        else "bundle serving_params"
    )
    rows = [
        ("projectId", project_id, "target.project_id" if settings.project_id else f"${PROJECT_ENV}"),
        ("name", name, name_from),
        ("instanceOptionId", f"{option_id} ({option_text})", option_from),
        ("hfModelRepo", repo, repo_from),
        ("hfModelRepoRevision", revision or "(not set)", revision_from),
        ("autoscalingPolicy.minReplica", str(compute.min_replicas), "compute.min_replicas"),
        ("autoscalingPolicy.maxReplica", str(compute.max_replicas), "compute.max_replicas"),
        ("autoscalingPolicy.cooldownPeriod", f"{cooldown} s", "autoscaling.cooldown" if scaling.cooldown is not None else "default"),
        *[(f"advanced.{k}", str(v), sp_from if k == "max_batch_size" else f"target.{k}") for k, v in advanced.items()],
    ]
    ignored = []
    if scaling.metrics:
        names = ", ".join(m.type for m in scaling.metrics)
        ignored.append(("autoscaling.metrics", f"{names}: FriendliAI autoscales on request load"))
    ignored.append(("serving_params.precision/accelerator", f"{serving.precision}/{serving.accelerator}: FriendliAI's engine chooses"))
    return MappedRequest(body=body, rows=rows, ignored=ignored)


def describe_auth() -> str:
    """How the token is used, for the plan (never the token itself)."""
    state = "set" if os.environ.get(TOKEN_ENV) else "NOT SET"
    return f"${TOKEN_ENV} ({state}; sent only in the Authorization header)"
