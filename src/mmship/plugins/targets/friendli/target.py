"""The ``friendli`` deploy target: FriendliAI Dedicated Endpoints through the REST API.

FriendliAI serves generative LLMs, VLMs and text-embedding models from Hugging Face
repos; it has no image-embedding API. So a bundle of ONNX graphs (CLIP, FLAVA, fusion) is
refused before any HTTP call, with the targets that can serve it, unless ``force``.
A weights bundle (the ``vlm`` adapter) is deployed from its Hugging Face repo: create,
find the new endpoint's id by name, then poll its status until it is deployed (RUNNING,
READY, or SLEEPING: scaled to zero). A create whose answer is lost (timeout, 5xx) may
still have made a billed endpoint, so mmship looks it up by name before giving up.
Every other operation acts only on endpoints of the configured project (:mod:`.lookup`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmship import hookimpl
from mmship.core.errors import DeployError
from mmship.core.target import Deployment, DeployPlan, Target, TargetOption
from mmship.plugins.targets.friendli import lookup
from mmship.plugins.targets.friendli.auth import DEFAULT_BASE_URL, base_url_problem, read_token
from mmship.plugins.targets.friendli.client import BASE_URL_ENV, FriendliAPIError, FriendliClient
from mmship.plugins.targets.friendli.lookup import LIVE_THEN_GONE, Endpoint
from mmship.plugins.targets.friendli.mapping import (
    PROJECT_ENV,
    FriendliSettings,
    build_create_request,
    describe_auth,
    describe_base_url,
)
from mmship.plugins.targets.friendli.watch import (
    RESTARTABLE,
    StatusView,
    describe,
    wait_until_running,
)

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig
    from mmship.plugins.targets.friendli.invoke import InvokeResult

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

    #: Lookups by name after a create whose answer was lost (the list may lag the create).
    lost_answer_lookups = 3

    @classmethod
    def for_url(cls, timeout_s: float) -> FriendliTarget:
        """The target ``mmship invoke friendli://ID`` uses: the API at ``$FRIENDLI_BASE_URL``
        (default https://api.friendli.ai), ``timeout_s`` (> 0) per request; an address the
        token must not go to is refused (without repeating it)."""
        base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        problem = base_url_problem(base_url)
        if problem is not None:
            raise DeployError(
                f"${BASE_URL_ENV}: {problem}",
                hint=f"unset {BASE_URL_ENV} to use {DEFAULT_BASE_URL}, or set it to an https:// URL",
            )
        if not timeout_s > 0:
            raise DeployError(f"--timeout must be above 0 seconds, got {timeout_s:g}", hint="pass e.g. --timeout 60")
        return cls(FriendliSettings(base_url=base_url, request_timeout_s=timeout_s))

    # --- helpers -------------------------------------------------------------------------

    def client(self) -> FriendliClient:
        """An authenticated client (raises when FRIENDLI_TOKEN is missing or malformed)."""
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
        if status.get("status") == "SLEEPING":
            details["note"] = "scaled to zero: the next request wakes it (and waits for it)"
        return Deployment(self.name, name, self._url(), describe(status) if status else "unknown", details)

    # --- plan and deploy -----------------------------------------------------------------

    def plan(self, bundle: Bundle, config: DeployConfig) -> FriendliPlan:
        self.preflight(bundle)
        mapped = build_create_request(self.settings, bundle, config, self.project())
        settings: dict[str, Any] = {f"{k}": f"{v}   (from {origin})" for k, v, origin in mapped.rows}
        for key, why in mapped.ignored:
            settings[f"(not mapped) {key}"] = why
        settings["billing"] = mapped.billing
        settings["base_url"] = describe_base_url(self.settings.base_url)
        settings["auth"] = describe_auth()
        s = self.settings
        steps = [
            "GET /dedicated/beta/endpoint?project_id=... to check that no live endpoint has this name",
            f"POST {s.base_url}/dedicated/beta/endpoint (create {mapped.body['name']!r})",
            "GET /dedicated/beta/endpoint?project_id=... to find the new endpoint's id by name "
            "(also when the create's answer is lost: it may exist and bill)",
        ]
        if s.wait:
            steps.append(
                f"poll GET .../{{id}}/status every {s.poll_interval_s:g} s until RUNNING, READY or SLEEPING "
                f"(timeout {s.timeout_s:g} s)"
            )
        return FriendliPlan(
            target=self.name,
            summary=f"create FriendliAI endpoint {mapped.body['name']!r} serving {mapped.body['hfModelRepo']}",
            settings=settings,
            steps=steps,
            body=mapped.body,
        )

    def _create(self, client: FriendliClient, body: dict[str, Any]) -> tuple[Endpoint, dict[str, Any]]:
        """Create the endpoint and find its id by name; a lost answer is looked up too."""
        project, name = body["projectId"], body["name"]
        lost: FriendliAPIError | None = None
        created: dict[str, Any] = {}
        try:
            created = client.create_endpoint(body)
        except FriendliAPIError as exc:
            if not exc.outcome_unknown:
                raise
            lost = exc
        matches: list[Endpoint] = []
        failure: str | None = None
        for attempt in range(self.lost_answer_lookups if lost else 1):
            if attempt:
                time.sleep(self.settings.poll_interval_s)
            try:
                matches = lookup.live(lookup.named(client, project, name))
            except FriendliAPIError as exc:
                if lost is None:
                    raise
                failure = exc.message
                break
            if matches:
                break
        if lost is not None and failure is not None:
            raise DeployError(
                f"the answer to creating endpoint {name!r} was lost ({lost.message}), and looking it up failed "
                f"too ({failure}); it may exist, and it bills once it runs",
                hint="check `mmship deployments list --target friendli` (or Friendli Suite) before deploying again",
            )
        if len(matches) > 1:
            raise lookup.ambiguous(name, project, matches)
        if not matches and lost is not None:
            raise DeployError(
                f"the answer to creating endpoint {name!r} was lost ({lost.message}), and no endpoint of that name "
                f"is listed in project {project} yet; it may still appear, and it bills once it runs",
                hint="check `mmship deployments list --target friendli` before deploying again, and delete the "
                "endpoint there if you do not want it",
            )
        if not matches:
            raise DeployError(
                f"FriendliAI accepted endpoint {name!r} ({describe(created)}) but it is not listed in project {project}",
                hint="look for it in Friendli Suite; `mmship deployments list --target friendli` lists the project",
            )
        if lost is not None:
            from mmship.core.cli.console import print_warning

            print_warning(
                f"the answer to the create request was lost ({lost.message}); endpoint {name!r} exists anyway "
                f"(id {matches[0].id}): carrying on with it"
            )
        return matches[0], created or matches[0].status

    def deploy(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan) -> Deployment:
        body = getattr(plan, "body", None) or self.plan(bundle, config).body
        project, name = body["projectId"], body["name"]
        with self.client() as client:
            existing = lookup.live(lookup.named(client, project, name))
            if existing:
                ids = ", ".join(f"{e.id} ({e.state})" for e in existing)
                raise DeployError(
                    f"project {project} already has a live endpoint named {name!r}: {ids}",
                    hint=f"choose another name with --set endpoint_name=..., or delete it first: "
                    f"`mmship deployments delete {existing[0].id} --target friendli`",
                )
            endpoint, status = self._create(client, body)
            if self.settings.wait:
                with StatusView(f"endpoint {name} ({endpoint.id})") as view:
                    status = wait_until_running(
                        client, endpoint.id, timeout_s=self.settings.timeout_s,
                        interval_s=self.settings.poll_interval_s, view=view,
                    )
            return self._deployment(endpoint.id, name, status, project_id=project)

    # --- deployments ---------------------------------------------------------------------

    def _resolve(self, client: FriendliClient, name: str, tiers: Any = lookup.LIVE_ONLY) -> Endpoint:
        return lookup.resolve(client, self.settings.resolved_project(), name, tiers)

    def list_deployments(self) -> list[Deployment]:
        """Endpoints of the project (or of the team when no project is set)."""
        with self.client() as client:
            return [self._deployment(e.id, e.name, e.status) for e in lookup.scan(client, self.settings.resolved_project())]

    def status(self, name: str) -> Deployment:
        """One endpoint's status and phase (a live endpoint, else one being deleted)."""
        with self.client() as client:
            endpoint = self._resolve(client, name, LIVE_THEN_GONE)
            return self._deployment(endpoint.id, endpoint.name, client.get_status(endpoint.id))

    def delete(self, name: str) -> Deployment:
        """Delete an endpoint (FriendliAI shows it TERMINATING for a while)."""
        with self.client() as client:
            endpoint = self._resolve(client, name)
            client.delete_endpoint(endpoint.id)
            return Deployment(self.name, endpoint.name, self._url(), "deleted", {"endpoint_id": endpoint.id})

    def sleep(self, name: str) -> Deployment:
        """Put an endpoint to sleep (no replicas, no cost; wake or a request brings it back)."""
        with self.client() as client:
            endpoint = self._resolve(client, name)
            return self._deployment(endpoint.id, endpoint.name, client.sleep_endpoint(endpoint.id))

    def wake(self, name: str) -> Deployment:
        """Wake a sleeping endpoint."""
        with self.client() as client:
            endpoint = self._resolve(client, name)
            return self._deployment(endpoint.id, endpoint.name, client.wake_endpoint(endpoint.id))

    def restart(self, name: str) -> Deployment:
        """Start a FAILED or TERMINATED endpoint again (``PUT .../restart``)."""
        with self.client() as client:
            endpoint = self._resolve(client, name, (RESTARTABLE, None))
            return self._deployment(endpoint.id, endpoint.name, client.restart_endpoint(endpoint.id))

    def invoke(self, name: str, *, texts: list[str], images: list[bytes], mode: str = "chat", max_tokens: int = 256) -> InvokeResult:
        """Call an endpoint: chat completions (text + images) or embeddings (texts)."""
        from mmship.plugins.targets.friendli.invoke import invoke_endpoint

        with self.client() as client:
            endpoint = self._resolve(client, name)
            return invoke_endpoint(client, endpoint.id, texts=texts, images=images, mode=mode, max_tokens=max_tokens)


@hookimpl
def mmship_register_targets(register: Any) -> None:
    """Register the FriendliAI target."""
    register(FriendliTarget)
