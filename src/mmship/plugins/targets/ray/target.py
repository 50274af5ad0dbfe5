"""RayTarget: plan and run a Ray Serve application for a bundle.

deploy_config mapping: ``compute.min_replicas``/``max_replicas`` -> autoscaling
``min_replicas``/``max_replicas``; an ``autoscaling.metrics`` entry of type
``request_count`` -> ``target_ongoing_requests``; ``autoscaling.cooldown`` ->
``downscale_delay_s``; ``serving_params`` -> the replicas' batching.

Several bundles (``mmship deploy B1 B2 --target ray``) are one application: every replica
serves all of them under their names, as ``mmship serve B1 B2`` does (the same routes, the
same ``model`` fields, each model at its own bundle's precision), so they scale together.

Serve's HTTP proxy binds ``host`` (127.0.0.1 by default). The replicas require
``MMSHIP_API_KEY`` as a bearer key when it is set, and a host other than loopback is refused
without one (or ``insecure: true``), like ``mmship serve``.
"""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmship import hookimpl
from mmship.core.errors import DeployError
from mmship.core.target import Deployment, DeployPlan, Target
from mmship.plugins.targets.ray.cluster import check_cluster_auth, check_loopback_only

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig


class RaySettings(BaseModel):
    """``target:`` keys for ``name: ray``."""

    @model_validator(mode="after")
    def _look_back_exceeds_interval(self) -> RaySettings:
        if self.look_back_period_s <= self.metrics_interval_s:
            raise ValueError(
                f"look_back_period_s ({self.look_back_period_s}) must be greater than metrics_interval_s "
                f"({self.metrics_interval_s}): Ray averages load over the look-back window"
            )
        return self

    model_config = ConfigDict(extra="forbid")
    address: str | None = Field(None, description="an existing cluster (ray://... or host:port); default: a local loopback Ray")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    app_name: str | None = None
    route_prefix: str = "/"
    num_cpus: float = Field(1.0, gt=0, description="CPUs per replica")
    target_ongoing_requests: float | None = Field(None, gt=0)
    upscale_delay_s: float = Field(5.0, ge=0)
    downscale_delay_s: float | None = Field(None, ge=0)
    look_back_period_s: float = Field(30.0, gt=0, description="must exceed metrics_interval_s")
    metrics_interval_s: float = Field(10.0, gt=0, description="how often replicas report load")
    threads: int | None = Field(None, ge=1, description="onnxruntime threads per replica session")
    jpeg_scaled_decode: bool = Field(False, description="decode large JPEGs at a reduced scale (faster, not bit-identical)")
    blocking: bool | None = Field(None, description="keep the command attached (default: yes for a local Ray)")
    work_dir: str | None = None
    insecure: bool = Field(False, description="allow a non-loopback host without an API key")
    allow_unauthenticated_cluster: bool = Field(
        False, description="join an address without Ray token authentication (Ray's own security applies)"
    )


#: The environment variable holding the replicas' API key (as for ``mmship serve``).
API_KEY_ENV = "MMSHIP_API_KEY"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(settings: RaySettings) -> str | None:
    """The replicas' API key (``MMSHIP_API_KEY``), or None; refuses a non-loopback host
    without one unless ``insecure`` (an empty key counts as none)."""
    key = os.environ.get(API_KEY_ENV)
    if key is not None and not key.strip():
        raise DeployError(
            f"{API_KEY_ENV} is set but empty: an empty key would let every request through",
            hint=f"set {API_KEY_ENV} to a long random key (e.g. `openssl rand -hex 32`), or unset it on loopback",
        )
    if key is not None:
        from mmship.serving.settings import check_api_key

        check_api_key(key)  # the replicas would refuse to start with it: say so before deploying
    if key is None and not _is_loopback(settings.host) and not settings.insecure:
        raise DeployError(
            f"refusing to serve Ray replicas on {settings.host} without an API key: anyone who can reach this "
            "address could use the model",
            hint=f"set {API_KEY_ENV} (the replicas then require 'Authorization: Bearer KEY'), keep host=127.0.0.1, "
            "or pass --set insecure=true if the network is yours alone",
        )
    return key


#: Ray's ``target_ongoing_requests`` when neither the config nor the settings set one.
DEFAULT_TARGET_ONGOING = 2.0
#: ``downscale_delay_s`` when neither ``autoscaling.cooldown`` nor the settings set one.
DEFAULT_DOWNSCALE_DELAY_S = 60.0


def autoscaling_config(config: DeployConfig, settings: RaySettings) -> dict[str, Any]:
    """Ray Serve ``autoscaling_config`` from the deploy config (settings override it)."""
    compute, scaling = config.compute, config.autoscaling
    target = settings.target_ongoing_requests or scaling.threshold("request_count") or DEFAULT_TARGET_ONGOING
    downscale = next(
        v for v in (settings.downscale_delay_s, scaling.cooldown, DEFAULT_DOWNSCALE_DELAY_S) if v is not None
    )
    return {
        "min_replicas": compute.min_replicas,
        "max_replicas": compute.max_replicas,
        "initial_replicas": compute.min_replicas,
        "target_ongoing_requests": target,
        "upscale_delay_s": settings.upscale_delay_s,
        "downscale_delay_s": float(downscale),
        "look_back_period_s": settings.look_back_period_s,
        "metrics_interval_s": settings.metrics_interval_s,
    }


class RayTarget(Target):
    """mmship's runtime as a Ray Serve application, locally or on a cluster."""

    name = "ray"
    description = "Ray Serve application with autoscaling replicas (local Ray or --address)"
    settings_model = RaySettings
    several_bundles = True

    settings: RaySettings

    def _serving(self, bundle: Bundle, config: DeployConfig) -> dict[str, Any]:
        serving = config.serving_params(bundle)
        replica = {"threads": self.settings.threads, "jpeg_scaled_decode": self.settings.jpeg_scaled_decode}
        if self.more_bundles:  # each model keeps its own bundle's batching and precision (_precisions)
            return replica
        return {
            "precision": serving.precision, "max_batch_size": serving.max_batch_size,
            "max_delay_ms": serving.max_delay_ms, **replica,
        }

    def _precisions(self, bundle: Bundle, config: DeployConfig) -> dict[str, str] | None:
        """Each model's precision when the app serves several bundles."""
        if not self.more_bundles:
            return None
        return {b.manifest.name: config.serving_params(b).precision for b in (bundle, *self.more_bundles)}

    def _options(self, bundle: Bundle, config: DeployConfig) -> dict[str, Any]:
        scaling = autoscaling_config(config, self.settings)
        batch = max(config.serving_params(b).max_batch_size for b in (bundle, *self.more_bundles))
        return {
            "name": "mmship",
            "autoscaling_config": scaling,
            "max_ongoing_requests": max(16, 2 * int(batch)),
            "ray_actor_options": {"num_cpus": self.settings.num_cpus},
        }

    def _security(self) -> dict[str, str]:
        """What the plan says about access (checks the API key and the cluster's auth)."""
        key = api_key(self.settings)
        if self.settings.address:
            warning = check_cluster_auth(self.settings.address, self.settings.allow_unauthenticated_cluster)
            ray_auth = "none: Ray's own security applies (allow_unauthenticated_cluster)" if warning else "token (RAY_AUTH_MODE=token)"
        else:
            ray_auth = "token, random for this run; every Ray port on 127.0.0.1; no dashboard"
        http = f"API key from {API_KEY_ENV}" if key is not None else "none (loopback only)"
        if key is None and not _is_loopback(self.settings.host):
            http = f"NONE on {self.settings.host} (insecure=true)"
        return {"ray_auth": ray_auth, "http_auth": http}

    def plan(self, bundle: Bundle, config: DeployConfig) -> DeployPlan:
        self.require_graphs(bundle)
        options = self._options(bundle, config)
        security = self._security()
        where = self.settings.address or "a local Ray on 127.0.0.1"
        app_name = self.settings.app_name or bundle.manifest.name
        served = ", ".join(b.manifest.name for b in (bundle, *self.more_bundles))
        return DeployPlan(
            target=self.name,
            summary=f"Ray Serve app {app_name!r} serving {served} on {where}, HTTP at http://{self.settings.host}:{self.settings.port}{self.settings.route_prefix}",
            settings={
                "app_name": app_name, "address": self.settings.address or "local", **security,
                **{f"autoscaling.{k}": v for k, v in options["autoscaling_config"].items()},
                "max_ongoing_requests": options["max_ongoing_requests"],
                "num_cpus_per_replica": self.settings.num_cpus,
                **{f"serving.{k}": v for k, v in self._serving(bundle, config).items()},
                **{f"precision.{k}": v for k, v in (self._precisions(bundle, config) or {}).items()},
            },
            steps=["start or join Ray", "start Serve's HTTP proxy", "deploy replicas (each warms up)", "wait until RUNNING"],
        )

    def deploy(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan) -> Deployment:
        deployment = self.start(bundle, config, plan)
        blocking = self.settings.blocking if self.settings.blocking is not None else self.settings.address is None
        if blocking:
            from mmship.core.cli.console import console
            from mmship.plugins.targets.ray.cluster import stop_ray

            console.print(f"Ray Serve is answering at {deployment.url} (Ctrl-C stops it and the local Ray)")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                stop_ray()
                deployment.status = "stopped"
        return deployment

    def start(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan, timeout_s: float = 300.0) -> Deployment:
        """Deploy and return once the application is RUNNING (does not block after)."""
        from mmship.plugins.targets.ray.cluster import start_ray
        from mmship.plugins.targets.ray.deployment import build_application

        key = api_key(self.settings)
        start_ray(
            self.settings.address, Path(self.settings.work_dir) if self.settings.work_dir else None,
            allow_unauthenticated_cluster=self.settings.allow_unauthenticated_cluster,
        )
        from ray import serve

        serve.start(http_options={"host": self.settings.host, "port": self.settings.port})
        app_name = plan.settings["app_name"]
        settings = {k: v for k, v in self._serving(bundle, config).items() if v is not None}
        if key is not None:
            settings["api_key"] = key  # to the replicas only (Ray keeps it with the deployment)
        paths = [str(Path(b.root).resolve()) for b in (bundle, *self.more_bundles)]
        application = build_application(
            paths if self.more_bundles else paths[0], settings, self._options(bundle, config), self._precisions(bundle, config),
        )
        serve.run(application, name=app_name, route_prefix=self.settings.route_prefix, blocking=False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = serve.status().applications.get(app_name)
            if status is not None and str(status.status).endswith("RUNNING"):
                if not self.settings.address:  # replicas and Serve's proxy now run too: look again
                    check_loopback_only(allowed_ports=() if _is_loopback(self.settings.host) else {self.settings.port})
                url = f"http://{self.settings.host}:{self.settings.port}{self.settings.route_prefix.rstrip('/')}"
                return Deployment(self.name, app_name, url, "running")
            if status is not None and str(status.status).endswith(("DEPLOY_FAILED", "UNHEALTHY")):
                raise DeployError(f"Ray Serve app {app_name!r} failed: {status.message}", hint="see the Ray logs")
            time.sleep(0.5)
        raise DeployError(f"Ray Serve app {app_name!r} was not RUNNING within {timeout_s:.0f} s", hint="see the Ray logs")

    def status(self, name: str) -> Deployment:
        """The application's status on the cluster at ``address``."""
        from mmship.plugins.targets.ray.cluster import start_ray

        start_ray(self.settings.address, allow_unauthenticated_cluster=self.settings.allow_unauthenticated_cluster)
        from ray import serve

        app = serve.status().applications.get(name)
        if app is None:
            raise DeployError(f"no Ray Serve application {name!r}", hint="check the name and --set address=...")
        replicas = {d: dict(s.replica_states) for d, s in app.deployments.items()}
        return Deployment(self.name, name, None, str(app.status), {"replicas": replicas})

    def delete(self, name: str) -> Deployment:
        """Delete the application from the cluster at ``address``."""
        from mmship.plugins.targets.ray.cluster import start_ray

        start_ray(self.settings.address, allow_unauthenticated_cluster=self.settings.allow_unauthenticated_cluster)
        from ray import serve

        serve.delete(name)
        return Deployment(self.name, name, None, "deleted")


@hookimpl
def mmship_register_targets(register: Any) -> None:
    """Register the ray target."""
    register(RayTarget)
