"""Wait for a FriendliAI endpoint to be deployed, showing its status and phase.

The statuses are the spec's ``InferenceDeploymentStatus``: RUNNING and READY serve,
SLEEPING is deployed and scaled to zero (the next request wakes it), so all three end the
wait. FAILED raises with the error code and its fix, TERMINATING/TERMINATED raise (both
with ``deployments restart`` where FriendliAI allows it: FAILED or TERMINATED), and the
rest (INITIALIZING, UPDATING, AWAKING, STOPPING, UNKNOWN) are in progress. On a terminal a
rich live line shows status, phase and elapsed time; elsewhere each change is printed
once. A timeout raises with the last status seen, leaving the endpoint in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.live import Live
from rich.text import Text

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.client import FriendliClient

#: FriendliAI error codes -> what the user should do.
ERROR_FIXES: dict[str, str] = {
    "WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR": "the repo is gated or private: integrate your HF token in Friendli "
    "Suite (Settings > Integrations > Hugging Face) or use a public repo",
    "WORKLOAD_INIT_INVALID_TOKEN_ERROR": "the Hugging Face token integrated in Friendli Suite is invalid or "
    "expired: replace it in Friendli Suite (Settings > Integrations)",
    "WORKLOAD_INIT_DOWNLOAD_ERROR": "the model could not be downloaded: check that the repo and revision exist "
    "and hold safetensors + config.json, then deploy again",
    "WORKLOAD_INIT_MANIFEST_NOT_FOUND_ERROR": "the repo lacks a config.json of a supported architecture: upload "
    "the bundle's hf/ folder to the repo",
    "WORKLOAD_INIT_MANIFEST_TYPE_ERROR": "FriendliAI does not serve this architecture: check its supported "
    "models list, or serve the bundle with --target local, ray or triton",
    "WORKLOAD_INIT_HF_WANDB_API_ERROR": "Hugging Face or W&B did not answer: retry later",
    "WORKLOAD_INIT_INSUFFICIENT_DISK_ERROR": "the model does not fit on the instance's disk: choose a larger "
    "instance (compute.instance_type: gpu.large)",
    "INFERENCE_ENGINE_MEMORY_ERROR": "the model does not fit in GPU memory: choose a larger instance "
    "(compute.instance_type) or lower model.serving_params.max_batch_size",
    "INFERENCE_ENGINE_INVALID_ARGUMENT_ERROR": "an advanced setting is invalid: check max_batch_size, "
    "max_token_count and max_input_length",
    "WORKLOAD_INIT_UNKNOWN_ERROR": "the workload failed to start for a reason FriendliAI did not name: restart it "
    "once (`mmship deployments restart`); if it fails again, see the endpoint's logs in Friendli Suite",
    "WORKLOAD_INIT_SETTINGS_ERROR": "the endpoint's settings were rejected when the workload started: check the "
    "advanced settings (max_batch_size, max_token_count, max_input_length) and the instance type in the plan",
    "WORKLOAD_INIT_GRPC_ERROR": "FriendliAI's workload service failed while starting the endpoint: restart it "
    "(`mmship deployments restart`) or retry later",
    "INFERENCE_ENGINE_UNKNOWN_ERROR": "the inference engine stopped for a reason FriendliAI did not name: check "
    "that the model's architecture is supported, then restart it (`mmship deployments restart`)",
    "INFERENCE_ENGINE_METERING_CLIENT_CONFIG_ERROR": "FriendliAI's usage metering is not configured for this "
    "endpoint (an account or billing problem on FriendliAI's side): check the team's billing in Friendli Suite "
    "or contact FriendliAI support",
}
DEFAULT_FIX = "see the endpoint's logs in Friendli Suite, fix the cause and deploy again"

#: Deployed: serving now (RUNNING, READY) or scaled to zero and woken by the next request (SLEEPING).
DEPLOYED = frozenset({"RUNNING", "READY", "SLEEPING"})
#: Going away or gone: such an endpoint does not hold its name.
GONE = frozenset({"TERMINATING", "TERMINATED"})
#: States from which ``PUT .../restart`` starts an endpoint again.
RESTARTABLE = frozenset({"FAILED", "TERMINATED"})
#: Still changing: keep waiting.
IN_PROGRESS = frozenset({"INITIALIZING", "UPDATING", "AWAKING", "STOPPING", "UNKNOWN"})


def fix_for(error_code: str | None) -> str:
    """The fix for a FriendliAI error code."""
    return ERROR_FIXES.get(error_code or "", DEFAULT_FIX)


def describe(status: dict[str, Any]) -> str:
    """``INITIALIZING (DOWNLOADING_MODEL)`` from a status object."""
    text = str(status.get("status", "UNKNOWN"))
    if status.get("phase"):
        text += f" ({status['phase']})"
    if status.get("errorCode"):
        text += f", error {status['errorCode']}"
    return text


class StatusView:
    """Shows polled statuses: a live line on a terminal, one line per change otherwise."""

    def __init__(self, label: str) -> None:
        from mmship.core.cli.console import console, is_interactive

        self.label = label
        self.console = console
        self.live: Live | None = Live(console=console, transient=True) if is_interactive() else None
        self.last: str | None = None
        self.started = time.monotonic()

    def __enter__(self) -> StatusView:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
        if self.last is not None and self.live is not None:
            self.console.print(f"{self.label}: {self.last}", markup=False)

    def update(self, status: dict[str, Any]) -> None:
        """Show one polled status."""
        text = describe(status)
        elapsed = time.monotonic() - self.started
        if self.live is not None:
            line = Text()
            line.append(self.label, style="bold")
            line.append(f": {text}  ")
            line.append(f"{elapsed:5.0f} s", style="dim")
            self.live.update(line)
        elif text != self.last:
            self.console.print(f"{self.label}: {text}  ({elapsed:.0f} s)", highlight=False, markup=False)
        self.last = text


def wait_until_running(
    client: FriendliClient,
    endpoint_id: str,
    *,
    timeout_s: float,
    interval_s: float,
    view: StatusView | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``GET .../{id}/status`` until the endpoint is deployed (RUNNING, READY or
    SLEEPING); returns the final status object."""
    deadline = clock() + timeout_s
    status: dict[str, Any] = {}
    restart = f"`mmship deployments restart {endpoint_id} --target friendli`"
    delete = f"`mmship deployments delete {endpoint_id} --target friendli`"
    while True:
        status = client.get_status(endpoint_id)
        if view is not None:
            view.update(status)
        state = str(status.get("status", "UNKNOWN"))
        if state in DEPLOYED:
            return status
        if state == "FAILED":
            code = status.get("errorCode") or "no error code"
            raise DeployError(
                f"FriendliAI endpoint {endpoint_id} FAILED with {code}",
                hint=fix_for(status.get("errorCode")) + f"; then start it again with {restart}, or remove it with {delete}",
            )
        if state in GONE:
            again = f"start it again with {restart}" if state in RESTARTABLE else "deploy again"
            raise DeployError(
                f"FriendliAI endpoint {endpoint_id} is {state} and will not start",
                hint=f"{again}, or check the endpoint in Friendli Suite",
            )
        if clock() >= deadline:
            raise DeployError(
                f"FriendliAI endpoint {endpoint_id} was not deployed (RUNNING, READY or SLEEPING) after {timeout_s:.0f} s "
                f"(last: {describe(status)})",
                hint=f"it may still start: watch it with `mmship deployments status {endpoint_id} --target friendli`, "
                "or deploy with a longer --set timeout_s=...",
            )
        sleep(min(interval_s, max(0.0, deadline - clock())))
