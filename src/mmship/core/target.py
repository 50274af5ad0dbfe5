"""The deploy-target contract: where a bundle goes (local, FriendliAI, Ray, Triton, ...).

A target is a class registered through ``mmship_register_targets``. It declares, as class
attributes, everything the CLI needs to know about it, so core and the commands know no
platform:

* ``settings_model``: a pydantic model validating the target-specific keys of
  ``deploy_config.yaml``'s ``target`` section (and ``--set key=value``);
* ``cli_options``: the flags it adds to ``mmship deploy`` (:class:`TargetOption`, e.g.
  Triton's ``--out``), each setting one field of its settings;
* ``url_schemes`` and ``invoke_modes``: the ``SCHEME://ID`` URLs ``mmship invoke`` sends
  to its :meth:`Target.invoke`, and what it can send.

:meth:`Target.plan` and :meth:`Target.deploy` are required. The optional operations
(``list``, ``status``, ``delete``, ``sleep``, ``wake``, ``restart``, ``invoke``) are
ordinary methods whose defaults raise a "not supported"
:class:`~mmship.core.errors.DeployError`; a target supports exactly the ones it overrides
(:meth:`Target.operations`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from mmship.core.errors import DeployError

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig

F = TypeVar("F", bound=Callable[..., Any])

#: The attribute :func:`optional_operation` sets on a method.
OPERATION_MARK = "__mmship_operation__"
#: Flags ``mmship deploy`` has itself; a target cannot declare them.
COMMAND_FLAGS: frozenset[str] = frozenset({"--target", "-t", "--config", "-c", "--dry-run", "--set", "--help"})


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


@dataclass(frozen=True)
class TargetOption:
    """A flag a target adds to ``mmship deploy``: ``--out REPO`` sets the ``out`` setting.

    The deploy command turns every registered target's options into real command-line
    options (listed by ``mmship deploy --help`` with the targets that take them); using
    one with a target that does not declare it is an error naming the targets that do.
    """

    #: The long flag, ``--out``.
    flag: str
    #: The field of the target's ``settings_model`` the flag sets.
    setting: str
    #: One line for ``--help`` (the target's name is added in front).
    help: str
    #: ``True``: a switch that sets the field to ``True``; ``False``: takes a value.
    is_flag: bool = False
    #: An optional short flag, ``-o``.
    short: str | None = None

    @property
    def decls(self) -> tuple[str, ...]:
        """The flag names as click takes them: ``("--out", "-o")``."""
        return (self.flag, self.short) if self.short else (self.flag,)


class InvokeAnswer(Protocol):
    """What :meth:`Target.invoke` returns: a reply text and/or embedding vectors."""

    text: str | None
    embeddings: list[list[float]]
    usage: dict[str, Any]


def optional_operation(name: str) -> Callable[[F], F]:
    """Mark a :class:`Target` method as the optional operation ``name`` (``deployments NAME``)."""

    def mark(method: F) -> F:
        setattr(method, OPERATION_MARK, name)
        return method

    return mark


class Target(ABC):
    """Base class for deploy targets."""

    #: Unique short name used in ``--target`` and ``target.name``.
    name: ClassVar[str]
    #: One line for ``mmship plugins`` / ``mmship deploy --help``.
    description: ClassVar[str] = ""
    #: Validates the target-specific keys of the ``target`` section.
    settings_model: ClassVar[type[BaseModel]] = NoSettings
    #: Flags this target adds to ``mmship deploy`` (see :class:`TargetOption`).
    cli_options: ClassVar[tuple[TargetOption, ...]] = ()
    #: URL schemes ``mmship invoke SCHEME://ID`` sends to :meth:`invoke` (``("friendli",)``).
    url_schemes: ClassVar[tuple[str, ...]] = ()
    #: What :meth:`invoke` can send (``chat``, ``embeddings``); the first is the default.
    invoke_modes: ClassVar[tuple[str, ...]] = ()
    #: Whether one deployment can serve several bundles (``mmship deploy B1 B2``): the
    #: first is the ``bundle`` of :meth:`plan` and :meth:`deploy`, the others are in
    #: :attr:`more_bundles`.
    several_bundles: ClassVar[bool] = False

    def __init__(self, settings: BaseModel | None = None) -> None:
        self.settings: Any = settings if settings is not None else self.settings_model()
        #: The bundles deployed beside the first (only for :attr:`several_bundles` targets).
        self.more_bundles: list[Bundle] = []

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> BaseModel:
        """Validate target-specific settings (raises ``pydantic.ValidationError``)."""
        return cls.settings_model.model_validate(settings)

    @classmethod
    def for_url(cls, timeout_s: float) -> Target:
        """The instance ``mmship invoke SCHEME://ID`` calls :meth:`invoke` on (default
        settings); a target overrides it to read its environment and apply ``timeout_s``."""
        return cls()

    # --- optional operations -------------------------------------------------------------

    @classmethod
    def operations(cls) -> tuple[str, ...]:
        """The optional operations this target supports: those whose method it overrides."""
        return tuple(
            op for op, method in _optional_methods().items() if getattr(cls, method.__name__) is not method
        )

    @classmethod
    def supports(cls, operation: str) -> bool:
        """True when this target implements the optional ``operation`` (``sleep``, ...)."""
        return operation in cls.operations()

    @classmethod
    def unsupported(cls, operation: str) -> DeployError:
        """The error for an optional operation this target does not implement."""
        from mmship.core.manager import get_plugin_manager

        able = [t.name for t in get_plugin_manager().targets() if t.supports(operation)]
        return DeployError(
            f"target {cls.name!r} does not support `deployments {operation}`",
            hint=f"targets that do: {', '.join(able) or 'none'}",
        )

    @optional_operation("list")
    def list_deployments(self) -> list[Deployment]:
        """The deployments this target knows of."""
        raise self.unsupported("list")

    @optional_operation("status")
    def status(self, name: str) -> Deployment:
        """One deployment's state."""
        raise self.unsupported("status")

    @optional_operation("delete")
    def delete(self, name: str) -> Deployment:
        """Remove a deployment."""
        raise self.unsupported("delete")

    @optional_operation("sleep")
    def sleep(self, name: str) -> Deployment:
        """Put a deployment to sleep (no replicas; :meth:`wake` brings it back)."""
        raise self.unsupported("sleep")

    @optional_operation("wake")
    def wake(self, name: str) -> Deployment:
        """Wake a sleeping deployment."""
        raise self.unsupported("wake")

    @optional_operation("restart")
    def restart(self, name: str) -> Deployment:
        """Start a failed or stopped deployment again."""
        raise self.unsupported("restart")

    @optional_operation("invoke")
    def invoke(self, name: str, *, texts: list[str], images: list[bytes], mode: str, max_tokens: int = 256) -> InvokeAnswer:
        """Call a deployment once with texts and encoded images; ``mode`` is one of
        :attr:`invoke_modes`."""
        raise self.unsupported("invoke")

    # --- deploying ---------------------------------------------------------------------

    def require_graphs(self, bundle: Bundle) -> None:
        """Refuse a bundle without graphs (a checkpoint bundle, e.g. a VLM)."""
        if bundle.manifest.kind != "graphs":
            raise DeployError(
                f"target {self.name!r} serves graphs, and bundle {bundle.manifest.name!r} "
                f"(adapter {bundle.manifest.adapter!r}) carries a checkpoint instead",
                hint="deploy it with a target that serves Hugging Face checkpoints, e.g. --target friendli",
            )

    @abstractmethod
    def plan(self, bundle: Bundle, config: DeployConfig) -> DeployPlan:
        """Describe what :meth:`deploy` would do, without doing it. ``config`` is the
        validated ``deploy_config.yaml``, or :meth:`DeployConfig.defaults` without one."""

    @abstractmethod
    def deploy(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan) -> Deployment:
        """Create the deployment described by ``plan``."""


def _optional_methods() -> dict[str, Callable[..., Any]]:
    """Optional operation name -> the base method that marks it."""
    return {getattr(m, OPERATION_MARK): m for m in vars(Target).values() if callable(m) and hasattr(m, OPERATION_MARK)}
