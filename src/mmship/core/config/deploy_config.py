"""The whole ``deploy_config.yaml`` (:class:`DeployConfig`) and its ``target`` section.

Every deploy target reads the config through the same typed path: a deploy without a
file gets :meth:`DeployConfig.defaults`, so targets never branch on "no config", and the
serving params a target uses come from one merge rule, :meth:`DeployConfig.serving_params`
(the bundle's, with only the fields the config sets explicitly on top).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from mmship.core.config.models import (
    Autoscaling,
    Compute,
    ModelSection,
    Runtime,
    Section,
    _as_text,
)
from mmship.core.errors import ConfigError
from mmship.core.specs import ServingParams

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle


class TargetSection(BaseModel):
    """``target``: the target's ``name``; every other key is a setting of that target,
    validated by its ``settings_model`` when the file is loaded."""

    model_config = ConfigDict(extra="allow")

    name: str
    _validated: BaseModel | None = PrivateAttr(default=None)

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, value: Any) -> Any:
        return _as_text(value)

    def settings(self) -> dict[str, Any]:
        """The target-specific keys as written (everything but ``name``)."""
        return dict(self.model_extra or {})

    @property
    def validated_settings(self) -> BaseModel | None:
        """The settings as the target's ``settings_model`` validated them (after loading)."""
        return self._validated


class DeployConfig(Section):
    """A whole ``deploy_config.yaml``: what every target reads.

    ``compute`` (instance type, replica bounds) and ``autoscaling`` (metrics with their
    thresholds parsed, cooldown in seconds) are typed sections with their defaults filled
    in; :meth:`serving_params` gives the serving params for a bundle.
    """

    runtime: Runtime = Field(default_factory=Runtime)
    compute: Compute = Field(default_factory=Compute)
    model: ModelSection
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    target: TargetSection | None = None

    _source: str | None = PrivateAttr(default=None)
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)
    _is_default: bool = PrivateAttr(default=False)

    @classmethod
    def defaults(cls, name: str) -> DeployConfig:
        """The config of a deploy without ``deploy_config.yaml``: every section at its
        default (one replica, no autoscaling metrics, the bundle's serving params) and
        ``model.name`` set to ``name`` (the bundle's name)."""
        config = cls(model=ModelSection(name=name))
        config._is_default = True
        return config

    @property
    def is_default(self) -> bool:
        """True for the config :meth:`defaults` made (no file was given)."""
        return self._is_default

    @property
    def source(self) -> str | None:
        """The file this config was read from."""
        return self._source

    @property
    def target_name(self) -> str | None:
        """``target.name``, or ``None`` when the file has no ``target`` section."""
        return self.target.name if self.target is not None else None

    def serving_params(self, bundle: Bundle) -> ServingParams:
        """The serving params every target uses for ``bundle``: the bundle's own, with the
        fields ``model.serving_params`` sets explicitly on top (a config that sets only
        ``max_batch_size`` keeps the bundle's precision, accelerator and delay).

        :raises ConfigError: when the merged params contradict each other (e.g. the
            config's ``max_batch_size`` is below the bundle's ``default_batch_size``).
        """
        base = bundle.manifest.serving_params
        given = self.model.serving_params
        update = {name: getattr(given, name) for name in sorted(given.model_fields_set)}
        if not update:
            return base
        try:
            return ServingParams.model_validate({**base.model_dump(), **update})
        except ValidationError as exc:
            reasons = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors(include_url=False))
            written = ", ".join(f"{k}: {v}" for k, v in update.items())
            raise ConfigError(
                f"{self.where('model', 'serving_params')} ({written}) on top of bundle "
                f"{bundle.manifest.name!r}'s serving params ({_params_text(base)}) gives invalid "
                f"serving params: {reasons}",
                hint="set the contradicting field in model.serving_params too (e.g. default_batch_size "
                "next to max_batch_size)",
            ) from None

    def line_of(self, *path: Any) -> int | None:
        """Line of ``path`` (or its nearest written ancestor) in the file, if read from one."""
        probe = tuple(path)
        while probe:
            if probe in self._lines:
                return self._lines[probe]
            probe = probe[:-1]
        return None

    def where(self, *path: Any) -> str:
        """``model.inputs[0].shape (line 12)``: a path and its line, for messages."""
        from mmship.core.config.issues import format_path

        line = self.line_of(*path)
        return format_path(path) + (f" (line {line})" if line is not None else "")


def _params_text(params: ServingParams) -> str:
    return ", ".join(f"{k}: {v}" for k, v in params.model_dump().items())
