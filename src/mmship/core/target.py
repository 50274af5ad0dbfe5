"""The deploy-target contract: where a bundle goes (local, FriendliAI, Ray, Triton, ...).

A target is a class registered through ``mmship_register_targets``. Its own pydantic
``settings_model`` validates the target-specific keys of ``deploy_config.yaml``'s
``target`` section, so core never needs to know a platform's settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mmship.core.config import DeployConfig


class NoSettings(BaseModel):
    """Settings model of a target that takes no settings."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class DeployPlan:
    """What a deployment will create, printed before anything happens."""

    target: str
    summary: str
    settings: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)


@dataclass
class Deployment:
    """A deployment that exists: where it answers and how to find it again."""

    target: str
    name: str
    url: str | None = None
    status: str = "unknown"
    details: dict[str, Any] = field(default_factory=dict)


class Target(ABC):
    """Base class for deploy targets."""

    #: Unique short name used in ``--target`` and ``target.name``.
    name: ClassVar[str]
    #: One line for ``mmship plugins`` / ``mmship deploy --help``.
    description: ClassVar[str] = ""
    #: Validates the target-specific keys of the ``target`` section.
    settings_model: ClassVar[type[BaseModel]] = NoSettings
    #: Deployment operations this target supports: list, status, delete, sleep, wake.
    supports: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: BaseModel | None = None) -> None:
        self.settings: Any = settings if settings is not None else self.settings_model()

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> BaseModel:
        """Validate target-specific settings (raises ``pydantic.ValidationError``)."""
        return cls.settings_model.model_validate(settings)

    def require_graphs(self, bundle: Any) -> None:
        """Refuse a bundle without ONNX graphs (a checkpoint bundle, e.g. a VLM)."""
        from mmship.core.errors import DeployError

        if not bundle.manifest.graphs:
            raise DeployError(
                f"target {self.name!r} serves ONNX graphs, and bundle {bundle.manifest.name!r} "
                f"(adapter {bundle.manifest.adapter!r}) carries a checkpoint instead",
                hint="deploy it with a target that serves Hugging Face checkpoints, e.g. --target friendli",
            )

    @abstractmethod
    def plan(self, bundle: Any, config: DeployConfig | None) -> DeployPlan:
        """Describe what :meth:`deploy` would do, without doing it."""

    @abstractmethod
    def deploy(self, bundle: Any, config: DeployConfig | None, plan: DeployPlan) -> Deployment:
        """Create the deployment described by ``plan``."""
