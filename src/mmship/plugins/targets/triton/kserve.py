"""A KServe ``InferenceService`` that serves a Triton model repository (protocol v2).

| deploy_config.yaml            | InferenceService                                          |
|-------------------------------|-----------------------------------------------------------|
| ``compute.min_replicas``       | ``spec.predictor.minReplicas``                            |
| ``compute.max_replicas``       | ``spec.predictor.maxReplicas``                            |
| ``autoscaling.metrics[0]``     | ``spec.predictor.scaleMetric`` / ``scaleTarget``          |
|   cpu_utilization / memory_utilization / request_count | ``cpu`` / ``memory`` / ``concurrency`` |
| ``autoscaling.cooldown``       | annotation ``autoscaling.knative.dev/scale-down-delay``   |
| accelerator cuda / tensorrt    | ``resources.limits["nvidia.com/gpu"]: 1``                 |
| ``target.storage_uri``         | ``spec.predictor.model.storageUri`` (a placeholder until set) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mmship.core.config import DeployConfig

#: deploy-config metric types -> KServe ``scaleMetric``.
SCALE_METRICS: dict[str, str] = {
    "cpu_utilization": "cpu",
    "memory_utilization": "memory",
    "request_count": "concurrency",
}
STORAGE_PLACEHOLDER = "s3://CHANGE-ME/path/to/model-repository"


@dataclass
class KServeManifest:
    """The manifest as a dict, plus notes on what could not be mapped."""

    body: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        """The YAML text, with a header comment."""
        header = "# KServe InferenceService written by mmship: set storageUri to where you copied the repository\n"
        return header + yaml.safe_dump(self.body, sort_keys=False)


def dns_name(text: str) -> str:
    """A Kubernetes (DNS-1123) name: lower case letters, digits and ``-``, <= 63 chars."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}".rstrip("-")
    return name[:63].rstrip("-")


def build_manifest(
    *,
    name: str,
    config: DeployConfig,
    storage_uri: str | None,
    gpu: bool,
    namespace: str | None = None,
    runtime_version: str | None = None,
) -> KServeManifest:
    """The InferenceService for the repository written next to it."""
    compute, scaling = config.compute, config.autoscaling
    notes: list[str] = []
    predictor: dict[str, Any] = {"minReplicas": compute.min_replicas, "maxReplicas": compute.max_replicas}
    usable = [m for m in scaling.metrics if m.type in SCALE_METRICS]
    for metric in scaling.metrics:
        if metric.type not in SCALE_METRICS:
            notes.append(f"autoscaling metric {metric.type!r} has no KServe scaleMetric (known: {', '.join(SCALE_METRICS)})")
    if usable:
        first = usable[0]
        predictor["scaleMetric"] = SCALE_METRICS[first.type]
        predictor["scaleTarget"] = round(first.threshold)
        for extra in usable[1:]:
            notes.append(f"KServe scales on one metric: {extra.type} is not used ({first.type} is)")
    model: dict[str, Any] = {
        "modelFormat": {"name": "triton"},
        "protocolVersion": "v2",
        "storageUri": storage_uri or STORAGE_PLACEHOLDER,
    }
    if runtime_version:
        model["runtimeVersion"] = runtime_version
    if gpu:
        model["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    predictor["model"] = model
    metadata: dict[str, Any] = {"name": dns_name(name)}
    if namespace:
        metadata["namespace"] = namespace
    if scaling.cooldown is not None:
        metadata["annotations"] = {"autoscaling.knative.dev/scale-down-delay": f"{scaling.cooldown}s"}
    body = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
    if not storage_uri:
        notes.append("storageUri is a placeholder: copy the repository to object storage and set it (--set storage_uri=...)")
    return KServeManifest(body=body, notes=notes)
