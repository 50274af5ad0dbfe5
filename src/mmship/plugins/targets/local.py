"""The ``local`` deploy target: ``mmship serve`` in the foreground or detached.

Detached deployments run ``python -m mmship serve`` as a child process with its log in
``$MMSHIP_HOME/deployments/<name>.log`` (default ``~/.mmship``) and a state file with its
pid, start time, command line and URL; ``mmship stop NAME`` (or ``mmship deployments delete
NAME --target local``) sends SIGTERM, which drains requests in flight, and only to the
process mmship started (see :mod:`mmship.plugins.targets.local_state`). The API key
travels in the child's environment only, never in a file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmship import hookimpl
from mmship.core.errors import DeployError
from mmship.core.target import Deployment, DeployPlan, Target
from mmship.plugins.targets.local_state import (
    NAME_RULE,
    check_name,
    identity,
    is_plain_name,
    log_path,
    read_record,
    state_dir,
    state_path,
    stop_verified,
    verified_process,
    write_record,
)
from mmship.serving.process import spawn_server, wait_ready

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig


class LocalSettings(BaseModel):
    """``target:`` keys for ``name: local``."""

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    detach: bool = False
    deployment_name: str | None = Field(None, description="name of a detached deployment (default: the bundle's)")
    threads: int | None = Field(None, ge=1)
    streams: int = Field(1, ge=1, description="batches each OpenVINO graph runs at once (mmship serve --streams)")
    max_queue: int = Field(256, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    latency_budget_ms: float = Field(1000.0, gt=0, description="estimated latency above which a request is refused at arrival")
    max_body_mb: float = Field(32.0, gt=0, description="largest request body accepted (413 above it)")
    max_items: int = Field(256, ge=1, description="images + texts + raw-tensor rows per request")
    runtime: str | None = Field(None, description="inference runtime for every tower (default: the build's choice)")
    jpeg_scaled_decode: bool = Field(False, description="decode large JPEGs at a reduced scale (faster, not bit-identical)")
    insecure: bool = False
    ready_timeout_s: float = Field(300.0, gt=0, description="how long a detached deploy waits for readiness")

    @field_validator("deployment_name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not is_plain_name(value):
            raise ValueError(f"expected {NAME_RULE}")
        return value


class LocalTarget(Target):
    """Serve the bundle on this machine with mmship's runtime."""

    name = "local"
    description = "mmship's own server on this machine (foreground or detached)"
    settings_model = LocalSettings

    several_bundles = True

    settings: LocalSettings

    def _serve_args(self, bundle: Bundle, config: DeployConfig) -> list[str]:
        s = self.settings
        bundles = [bundle, *self.more_bundles]
        args = [str(b.root) for b in bundles]
        args += ["--host", s.host, "--port", str(s.port), "--max-queue", str(s.max_queue), "--timeout", str(s.timeout_s)]
        args += ["--latency-budget-ms", str(s.latency_budget_ms), "--max-body-mb", str(s.max_body_mb), "--max-items", str(s.max_items)]
        if s.runtime:
            args += ["--runtime", s.runtime]
        serving = config.serving_params(bundle)
        if self.more_bundles:  # each model at its own bundle's precision and batching
            args += [f"--precision={b.manifest.name}={config.serving_params(b).precision}" for b in bundles]
        else:
            args += ["--precision", serving.precision, "--max-batch-size", str(serving.max_batch_size), "--max-delay-ms", str(serving.max_delay_ms)]
        if s.threads:
            args += ["--threads", str(s.threads)]
        if s.streams > 1:
            args += ["--streams", str(s.streams)]
        if s.jpeg_scaled_decode:
            args.append("--jpeg-scaled-decode")
        if s.insecure:
            args.append("--insecure")
        return args

    def plan(self, bundle: Bundle, config: DeployConfig) -> DeployPlan:
        self.require_graphs(bundle)
        name = check_name(self.settings.deployment_name or bundle.manifest.name)
        args = self._serve_args(bundle, config)
        mode = "detached (background process)" if self.settings.detach else "foreground (Ctrl-C stops it)"
        return DeployPlan(
            target=self.name,
            summary=f"serve {', '.join(b.manifest.name for b in (bundle, *self.more_bundles))} at http://{self.settings.host}:{self.settings.port} ({mode})",
            settings={"name": name, "command": "mmship serve " + " ".join(args), **self.settings.model_dump()},
            steps=["load and verify the bundle", "warm up every graph", "listen; ready at /v2/health/ready"],
        )

    def deploy(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan) -> Deployment:
        args = self._serve_args(bundle, config)
        url = f"http://{self.settings.host}:{self.settings.port}"
        name = plan.settings["name"]
        if not self.settings.detach:
            from mmship.core.cli.app import main

            code = main(["serve", *args])
            return Deployment(self.name, name, url, "stopped" if code == 0 else f"exited {code}")
        if state_path(name).exists() and self._status(name) == "running":
            raise DeployError(f"local deployment {name!r} is already running", hint=f"mmship stop {name}")
        key = os.environ.get("MMSHIP_API_KEY")
        if key is not None:
            from mmship.serving.settings import check_api_key

            check_api_key(key)  # the child would exit on it: say why here, not in its log
        log = log_path(name)
        with log.open("ab") as fh:  # the API key (if any) goes to this child only
            child = spawn_server(args, fh, api_key=key)
        record = {"name": name, "pid": child.pid, **identity(child.pid, list(child.args)), "url": url, "log": str(log), "bundle": str(bundle.root)}
        write_record(name, record)
        try:
            wait_ready(url, child, self.settings.ready_timeout_s, log)
        except DeployError:
            state_path(name).unlink(missing_ok=True)
            raise
        return Deployment(self.name, name, url, "running", {"pid": child.pid, "log": str(log)})

    # --- deployments ---------------------------------------------------------------

    def _record(self, name: str) -> dict[str, Any]:
        path = state_path(name)
        if not path.exists():
            known = ", ".join(p.stem for p in state_dir().glob("*.json")) or "none"
            raise DeployError(f"no local deployment called {name!r} (known: {known})", hint="mmship deployments list --target local")
        return read_record(path)

    def _status(self, name: str) -> str:
        return "running" if verified_process(self._record(name), state_path(name)) is not None else "stopped"

    def list_deployments(self) -> list[Deployment]:
        """Detached local deployments, running or not (a state file that cannot be
        trusted is listed with the reason, never acted on)."""
        result = []
        for path in sorted(state_dir().glob("*.json")):
            try:
                record = self._record(path.stem)
                result.append(Deployment(self.name, path.stem, record.get("url"), self._status(path.stem), record))
            except DeployError as exc:
                result.append(Deployment(self.name, path.stem, None, "invalid state file", {"problem": exc.message}))
        return result

    def status(self, name: str) -> Deployment:
        """One deployment's state."""
        record = self._record(name)
        return Deployment(self.name, name, record.get("url"), self._status(name), record)

    def delete(self, name: str, timeout_s: float = 30.0) -> Deployment:
        """Stop a detached deployment with SIGTERM (drains requests in flight), if its
        recorded process is still the server mmship started; remove its state file."""
        record = self._record(name)
        process = verified_process(record, state_path(name))
        if process is not None:
            stop_verified(process, timeout_s)
        state_path(name).unlink(missing_ok=True)
        return Deployment(self.name, name, record.get("url"), "deleted", record)


@hookimpl
def mmship_register_targets(register: Any) -> None:
    """Register the local target."""
    register(LocalTarget)


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add ``mmship stop NAME``, the local target's own command."""

    @app.command("stop")
    def stop(name: str = typer.Argument(..., help="A detached local deployment (see `mmship deployments list --target local`).")) -> None:
        """Stop a detached local deployment (SIGTERM: requests in flight finish first)."""
        from mmship.core.cli.console import console

        result = LocalTarget().delete(name)
        console.print(f"stopped {result.name} ({result.url})")
