"""The ``friendli`` deploy target: FriendliAI Dedicated Endpoints through the REST API.

FriendliAI serves generative LLMs, VLMs and text-embedding models from Hugging Face
repos; it has no image-embedding API. So a bundle of ONNX graphs (CLIP, FLAVA, fusion) is
refused before any HTTP call, with the targets that can serve it, unless ``force``.
A weights bundle (the ``vlm`` adapter) is deployed from its Hugging Face repo: create,
find the new endpoint's id by name, then poll its status until RUNNING.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmship import hookimpl
from mmship.core.errors import DeployError
from mmship.core.target import Deployment, DeployPlan, Target, TargetOption
from mmship.plugins.targets.friendli.client import (
    DEFAULT_BASE_URL,
    FriendliAPIError,
    FriendliClient,
    read_token,
)
from mmship.plugins.targets.friendli.mapping import (
    PROJECT_ENV,
    FriendliSettings,
    build_create_request,
    describe_auth,
)
from mmship.plugins.targets.friendli.watch import (
    StatusView,
    describe,
    wait_until_running,
)

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig
    from mmship.plugins.targets.friendli.invoke import InvokeResult

#: Where ``mmship invoke friendli://ID`` sends requests (default: the public API).
BASE_URL_ENV = "FRIENDLI_BASE_URL"

#: Targets that serve bundles of ONNX graphs (image/text embeddings, scores).
GRAPH_TARGETS = ("local", "ray", "triton")


@dataclass
class FriendliPlan(DeployPlan):
    """A plan that carries the exact create request it printed."""

    body: dict[str, Any] = field(default_factory=dict)


class FriendliTarget(Target):
    """FriendliAI Dedicated Endpoints (LLMs, VLMs, text embeddings)."""

    name = "friendli"
    description = "FriendliAI Dedicated Endpoints: vision-language chat (vlm adapter) from a Hugging Face repo"
    settings_model = FriendliSettings
    cli_options = (
        TargetOption("--hf-repo", "hf_repo", "the Hugging Face repo to serve"),
        TargetOption("--force", "force", "deploy a bundle FriendliAI would refuse", is_flag=True),
    )
    url_schemes = ("friendli",)
    invoke_modes = ("chat", "embeddings")

    settings: FriendliSettings

    @classmethod
    def for_url(cls, timeout_s: float) -> FriendliTarget:
        """The target ``mmship invoke friendli://ID`` uses: the API at ``$FRIENDLI_BASE_URL``
        (default https://api.friendli.ai), ``timeout_s`` per request."""
        return cls(FriendliSettings(base_url=os.environ.get(BASE_URL_ENV, DEFAULT_BASE_URL), request_timeout_s=timeout_s))

    # --- helpers -------------------------------------------------------------------------

    def client(self) -> FriendliClient:
        """An authenticated client (raises when FRIENDLI_TOKEN is missing)."""
        s = self.settings
        return FriendliClient(
            read_token(), s.base_url, team=s.resolved_team(), timeout_s=s.request_timeout_s, retries=s.retries
        )

    def project(self) -> str:
        """The project id, or an error saying where to put it."""
        project = self.settings.resolved_project()
        if not project:
            raise DeployError(
                "no FriendliAI project id",
                hint=f"set target.project_id in deploy_config.yaml, pass --set project_id=..., or export {PROJECT_ENV}=... "
                "(Friendli Suite shows it in the project's URL)",
            )
        return project

    def preflight(self, bundle: Bundle) -> None:
        """Refuse bundles FriendliAI cannot serve (unless ``force``)."""
        if bundle.manifest.kind == "weights" or self.settings.force:
            return
        m = bundle.manifest
        raise DeployError(
            f"FriendliAI cannot serve bundle {m.name!r} (adapter {m.adapter!r}): it serves LLMs, vision-language "
            "chat models and text-embedding models, and has no API for image embeddings or image-text scores, "
            f"which is what this {m.adapter} bundle's ONNX graphs compute",
            hint=f"serve it with one of: {', '.join(f'--target {t}' for t in GRAPH_TARGETS)} "
            "(`mmship deploy BUNDLE --target triton --out REPO` for Triton/KServe); pass --force to send it anyway",
        )

    def _url(self) -> str:
        return f"{self.settings.base_url.rstrip('/')}/dedicated/v1"

    def _deployment(self, endpoint_id: str, name: str, status: dict[str, Any], **extra: Any) -> Deployment:
        details = {"endpoint_id": endpoint_id, "model": endpoint_id, "phase": status.get("phase"), **extra}
        if status.get("errorCode"):
            details["error_code"] = status["errorCode"]
        return Deployment(self.name, name, self._url(), describe(status) if status else "unknown", details)

    # --- plan and deploy -----------------------------------------------------------------

    def plan(self, bundle: Bundle, config: DeployConfig) -> FriendliPlan:
        self.preflight(bundle)
        mapped = build_create_request(self.settings, bundle, config, self.project())
        settings: dict[str, Any] = {f"{k}": f"{v}   (from {origin})" for k, v, origin in mapped.rows}
        for key, why in mapped.ignored:
            settings[f"(not mapped) {key}"] = why
        settings["base_url"] = self.settings.base_url
        settings["auth"] = describe_auth()
        s = self.settings
        steps = [
            f"POST {s.base_url}/dedicated/beta/endpoint (create {mapped.body['name']!r})",
            "GET /dedicated/beta/endpoint?projectId=... to find the new endpoint's id by name",
        ]
        if s.wait:
            steps.append(f"poll GET .../{{id}}/status every {s.poll_interval_s:g} s until RUNNING (timeout {s.timeout_s:g} s)")
        return FriendliPlan(
            target=self.name,
            summary=f"create FriendliAI endpoint {mapped.body['name']!r} serving {mapped.body['hfModelRepo']}",
            settings=settings,
            steps=steps,
            body=mapped.body,
        )

    def deploy(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan) -> Deployment:
        body = getattr(plan, "body", None) or self.plan(bundle, config).body
        with self.client() as client:
            existing = find_by_name(client, body["projectId"], body["name"])
            if existing is not None:
                raise DeployError(
                    f"project {body['projectId']} already has an endpoint named {body['name']!r} (id {existing})",
                    hint=f"choose another name with --set endpoint_name=..., or delete it first: "
                    f"`mmship deployments delete {existing} --target friendli`",
                )
            created = client.create_endpoint(body)
            endpoint_id = find_by_name(client, body["projectId"], body["name"])
            if endpoint_id is None:
                raise DeployError(
                    f"FriendliAI accepted endpoint {body['name']!r} ({describe(created)}) but it is not listed in "
                    f"project {body['projectId']}",
                    hint="look for it in Friendli Suite; `mmship deployments list --target friendli` lists the project",
                )
            status = created
            if self.settings.wait:
                with StatusView(f"endpoint {body['name']} ({endpoint_id})") as view:
                    status = wait_until_running(
                        client, endpoint_id, timeout_s=self.settings.timeout_s,
                        interval_s=self.settings.poll_interval_s, view=view,
                    )
            return self._deployment(endpoint_id, body["name"], status, project_id=body["projectId"])

    # --- deployments ---------------------------------------------------------------------

    def _resolve(self, client: FriendliClient, name: str) -> tuple[str, str]:
        """(endpoint id, endpoint name) for an id or a name."""
        try:
            spec = client.get_endpoint(name)
            return name, str(spec.get("name", name))
        except FriendliAPIError as exc:
            if exc.status not in (404, 422):
                raise
        endpoint_id = find_by_name(client, self.settings.resolved_project(), name)
        if endpoint_id is None:
            where = f"project {self.settings.resolved_project()}" if self.settings.resolved_project() else "the team"
            raise DeployError(
                f"no FriendliAI endpoint with id or name {name!r} in {where}",
                hint="list them with `mmship deployments list --target friendli` (set project_id or FRIENDLI_PROJECT)",
            )
        return endpoint_id, name

    def list_deployments(self) -> list[Deployment]:
        """Endpoints of the project (or of the team when no project is set)."""
        with self.client() as client:
            listed = client.list_endpoints(self.settings.resolved_project())
            result = []
            for endpoint_id, status in _newest_first(listed):
                spec = client.get_endpoint(endpoint_id)
                result.append(self._deployment(endpoint_id, str(spec.get("name", endpoint_id)), status))
            return result

    def status(self, name: str) -> Deployment:
        """One endpoint's status and phase."""
        with self.client() as client:
            endpoint_id, endpoint_name = self._resolve(client, name)
            return self._deployment(endpoint_id, endpoint_name, client.get_status(endpoint_id))

    def delete(self, name: str) -> Deployment:
        """Delete an endpoint."""
        with self.client() as client:
            endpoint_id, endpoint_name = self._resolve(client, name)
            client.delete_endpoint(endpoint_id)
            return Deployment(self.name, endpoint_name, self._url(), "deleted", {"endpoint_id": endpoint_id})

    def sleep(self, name: str) -> Deployment:
        """Put an endpoint to sleep (no replicas, no cost; wake brings it back)."""
        with self.client() as client:
            endpoint_id, endpoint_name = self._resolve(client, name)
            return self._deployment(endpoint_id, endpoint_name, client.sleep_endpoint(endpoint_id))

    def wake(self, name: str) -> Deployment:
        """Wake a sleeping endpoint."""
        with self.client() as client:
            endpoint_id, endpoint_name = self._resolve(client, name)
            return self._deployment(endpoint_id, endpoint_name, client.wake_endpoint(endpoint_id))

    def invoke(self, name: str, *, texts: list[str], images: list[bytes], mode: str = "chat", max_tokens: int = 256) -> InvokeResult:
        """Call an endpoint: chat completions (text + images) or embeddings (texts)."""
        from mmship.plugins.targets.friendli.invoke import invoke_endpoint

        with self.client() as client:
            endpoint_id, _ = self._resolve(client, name)
            return invoke_endpoint(client, endpoint_id, texts=texts, images=images, mode=mode, max_tokens=max_tokens)


def _newest_first(listed: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(listed.items(), key=lambda item: str(item[1].get("createdAt") or ""), reverse=True)


def find_by_name(client: FriendliClient, project_id: str | None, name: str, max_lookups: int = 200) -> str | None:
    """The id of the newest live endpoint called ``name`` (the list gives ids and
    statuses; each endpoint's spec gives its name). TERMINATED endpoints are skipped."""
    for endpoint_id, status in _newest_first(client.list_endpoints(project_id))[:max_lookups]:
        if status.get("status") == "TERMINATED":
            continue
        if status.get("name") == name:
            return endpoint_id
        if "name" not in status and client.get_endpoint(endpoint_id).get("name") == name:
            return endpoint_id
    return None


@hookimpl
def mmship_register_targets(register: Any) -> None:
    """Register the FriendliAI target."""
    register(FriendliTarget)
