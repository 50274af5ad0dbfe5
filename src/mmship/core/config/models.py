"""The sections of ``deploy_config.yaml`` as pydantic models (unknown keys refused).

The shape, with the user's own file as the example::

    runtime:      {framework: pytorch, version: "1.12"}
    compute:      {instance_type: gpu.large, min_replicas: 1, max_replicas: 5}
    model:
      name: clip-multimodal
      path: ./clip_quantized          # or hub_id: org/name (+ revision)
      adapter: auto                   # or an adapter name (`mmship adapters`)
      inputs:
        - {name: image, type: tensor, shape: [-1, 3, 224, 224]}
        - {name: text, type: tensor, shape: [-1, 77]}
      serving_params: {default_batch_size: 4, precision: fp16, accelerator: tensorrt}
    autoscaling:
      metrics:
        - {type: cpu_utilization, threshold: 60%}
        - {type: memory_utilization, threshold: 70%}
        - {type: request_count, threshold: 8}
      cooldown: 300
    target: {name: friendli, ...}     # the rest: the target's own settings

Every section here forbids unknown keys. The whole file, :class:`DeployConfig`, and the
``target`` section (whose keys besides ``name`` are validated by the registered target's
``settings_model``, so core knows no platform) live in :mod:`mmship.core.config.deploy_config`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mmship.core.specs import DType, ServingParams

Framework = Literal["pytorch", "onnxruntime", "tensorrt"]
InputType = Literal["tensor", "image", "text"]
MetricType = Literal["cpu_utilization", "memory_utilization", "request_count"]
#: Metric types whose threshold is a percentage (``60%``).
PERCENT_METRICS: frozenset[str] = frozenset({"cpu_utilization", "memory_utilization"})

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$")


def problem(message: str, hint: str | None = None) -> PydanticCustomError:
    """A validation error carrying mmship's message and fix (shown as written)."""
    return PydanticCustomError("mmship", "{message}", {"message": message, "hint": hint})


def _as_text(value: Any) -> Any:
    """Numbers YAML read from unquoted text (``version: 1.12``) back to text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return value


def _is_dynamic_mark(value: Any) -> bool:
    """``-1``'s other spellings: ``null``, ``"?"``, ``"*"``, and a bare ``?`` in a flow
    list (YAML reads ``[?, 3]`` as ``[{None: None}, 3]``)."""
    if value is None or value == {None: None}:
        return True
    return isinstance(value, str) and value.strip() in {"?", "-1", "*"}


class Section(BaseModel):
    """Base of every section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Runtime(Section):
    """``runtime``: the framework the model comes from and its version."""

    framework: Framework = Field("pytorch", description="framework of the source model")
    version: str | None = Field(None, description='framework version, e.g. "2.13" (quote it)')

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return _as_text(value)


class Compute(Section):
    """``compute``: instance type and replica bounds."""

    instance_type: str | None = Field(None, description="<family>.<size>, e.g. cpu.medium, gpu.large")
    min_replicas: int = Field(1, ge=0, description="replicas always running (0: scale to zero)")
    max_replicas: int = Field(None, ge=1, validate_default=True, description="autoscaling's upper bound")  # type: ignore[assignment]

    @field_validator("instance_type", mode="before")
    @classmethod
    def _instance_text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("max_replicas", mode="before")
    @classmethod
    def _default_to_min(cls, value: Any, info: Any) -> Any:
        if value is None:
            return max(info.data.get("min_replicas") or 1, 1)
        return value

    @field_validator("max_replicas")
    @classmethod
    def _not_below_min(cls, value: int, info: Any) -> int:
        low = info.data.get("min_replicas")
        if low is not None and low > value:
            raise problem(
                f"min_replicas ({low}) is larger than max_replicas ({value}); expected "
                f"max_replicas >= min_replicas",
                f"raise max_replicas to at least {low}, or lower min_replicas to {value} or less",
            )
        return value


class InputDecl(Section):
    """One entry of ``model.inputs``: what clients send.

    ``name`` is an adapter input (``pixel_values``, ``input_ids``) or a modality
    (``image``, ``text``); ``shape`` uses ``-1`` (or ``?``) for a dynamic axis.
    """

    name: str
    type: InputType = "tensor"
    shape: list[int] | None = None
    dtype: DType | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("shape", mode="before")
    @classmethod
    def _dynamic_marks(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [-1 if _is_dynamic_mark(v) else v for v in value]
        return value

    @field_validator("shape")
    @classmethod
    def _positive_dims(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise problem("expected at least one axis, got []", "write e.g. [-1, 3, 224, 224]")
        bad = [d for d in value if d == 0 or d < -1]
        if bad:
            shown = "[" + ", ".join(map(str, value)) + "]"
            raise problem(
                f"expected positive sizes or -1 (dynamic), got {shown}",
                "use -1 for a dynamic axis (the batch) and the model's size elsewhere",
            )
        return value

    @model_validator(mode="after")
    def _tensor_has_shape(self) -> InputDecl:
        if self.type == "tensor" and self.shape is None:
            raise problem(
                f"input {self.name!r} is a tensor but has no shape",
                "add shape: [-1, ...] (-1 is the dynamic batch axis)",
            )
        return self

    def shape_text(self) -> str:
        """The shape as written: ``[-1, 3, 224, 224]``."""
        return "[" + ", ".join(str(s) for s in self.shape or []) + "]"


class ModelSection(Section):
    """``model``: which model, its adapter, its inputs and how it is served."""

    name: str = Field(description="model / endpoint name")
    path: str | None = Field(None, description="local folder written by save_pretrained (or a bundle)")
    hub_id: str | None = Field(None, description="Hugging Face hub id, org/name")
    revision: str | None = Field(None, description="hub branch, tag or commit")
    adapter: str = Field("auto", description="adapter name, or auto (detect from config.json)")
    inputs: list[InputDecl] = Field(default_factory=list)
    serving_params: ServingParams = Field(default_factory=ServingParams)

    @field_validator("name", "path", "hub_id", "revision", "adapter", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("hub_id")
    @classmethod
    def _hub_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _HUB_ID.match(value):
            raise problem(
                f"expected a hub id like 'org/name', got {value!r}",
                "write e.g. hub_id: openai/clip-vit-base-patch32, or use path: for a local folder",
            )
        return value

    @field_validator("inputs")
    @classmethod
    def _unique_names(cls, value: list[InputDecl]) -> list[InputDecl]:
        names = [i.name for i in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise problem(f"input {twice[0]!r} is declared more than once", "declare each input once")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        if self.path is not None and self.hub_id is not None:
            raise problem(
                f"both path ({self.path}) and hub_id ({self.hub_id}) are set; expected one",
                "keep path: for a local folder or hub_id: for the hub, not both",
            )
        return self

    @property
    def source(self) -> str | None:
        """``path`` or ``hub_id``, whichever is set."""
        return self.path or self.hub_id


class Metric(Section):
    """One autoscaling metric. Utilisation thresholds are percentages (``60%``, stored as
    ``60.0``); a ``request_count`` threshold is a number of requests in flight per replica."""

    type: MetricType
    threshold: float

    @field_validator("threshold", mode="before")
    @classmethod
    def _parse(cls, value: Any, info: Any) -> Any:
        kind = info.data.get("type")
        if kind is None:  # the type is invalid: that error is reported already
            return _lenient_number(value)
        if kind in PERCENT_METRICS:
            return _percent(value, kind)
        return _count(value)

    @property
    def is_percent(self) -> bool:
        """True for utilisation metrics (threshold in percent)."""
        return self.type in PERCENT_METRICS

    def threshold_text(self) -> str:
        """``60%`` or ``8``."""
        return f"{self.threshold:g}%" if self.is_percent else f"{self.threshold:g}"


def _lenient_number(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().rstrip("%").strip()
        try:
            return float(text)
        except ValueError:
            return value
    return value


def _percent(value: Any, kind: str) -> float:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        raise problem(f"expected a percentage like '60%' for {kind}, got {value!r}", "write e.g. threshold: 60%")
    text = str(value).strip()
    if not text.endswith("%"):
        try:
            number = float(text)
        except ValueError:
            raise problem(f"expected a percentage like '60%' for {kind}, got {text!r}", "write e.g. threshold: 60%") from None
        meant = f"{number * 100:g}%" if 0 < number <= 1 else f"{number:g}%"
        raise problem(
            f"expected a percentage with a % sign for {kind}, got {text} (no %)",
            f"write threshold: {meant}",
        )
    try:
        number = float(text[:-1].strip())
    except ValueError:
        raise problem(f"expected a percentage like '60%' for {kind}, got {text!r}", "write e.g. threshold: 60%") from None
    if not 0 < number <= 100:
        raise problem(
            f"expected a percentage between 0% and 100% for {kind}, got {text}",
            "utilisation cannot pass 100%: write e.g. threshold: 80%",
        )
    return number


def _count(value: Any) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        raise problem(
            f"expected a number of requests in flight per replica for request_count, got {value!r} (a percentage)",
            "write e.g. threshold: 8 (no % sign)",
        )
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        raise problem(f"expected a number of requests for request_count, got {value!r}", "write e.g. threshold: 8") from None
    if not number > 0:
        raise problem(f"expected a number of requests > 0 for request_count, got {value!r}", "write e.g. threshold: 8")
    return number


class Autoscaling(Section):
    """``autoscaling``: metrics that add replicas, and the cooldown before removing one."""

    metrics: list[Metric] = Field(default_factory=list)
    cooldown: int | None = Field(None, ge=0, description="seconds (300, or '5m')")

    @field_validator("cooldown", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _DURATION.match(value)
            if not match:
                raise problem(f"expected seconds like 300 (or '5m'), got {value!r}", "write e.g. cooldown: 300")
            number, unit = float(match.group(1)), (match.group(2) or "s")[0]
            return round(number * {"s": 1, "m": 60, "h": 3600}[unit])
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("metrics")
    @classmethod
    def _one_per_type(cls, value: list[Metric]) -> list[Metric]:
        kinds = [m.type for m in value]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            raise problem(f"metric {twice[0]!r} is listed more than once", "keep one threshold per metric type")
        return value

    def threshold(self, metric_type: MetricType) -> float | None:
        """The threshold of ``metric_type`` (percent, or requests in flight), or ``None``
        when that metric is not listed."""
        return next((m.threshold for m in self.metrics if m.type == metric_type), None)
