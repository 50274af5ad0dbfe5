"""Start or join Ray, keeping a local cluster closed to everyone but this user's driver.

Out of the box a local Ray binds its GCS, raylet, workers and dashboard agent to every
interface and, with token authentication off, lets anyone who reaches those ports run code
on the machine. A local Ray started here (measured, see the project's FACTS notes):

* binds every listener to 127.0.0.1 (node address 127.0.0.1, no dashboard,
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, ``HOME`` holding a ``ray_bootstrap_config.yaml``
  with ``provider: {type: local}`` so nothing probes cloud metadata services);
* requires Ray's token authentication with a random token made for this run
  (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``): a client without it is refused;
* starts its processes with an allow-listed environment (:mod:`mmship.child_env`), so
  GCS, raylet and every worker and replica lack ``FRIENDLI_TOKEN``, ``HF_TOKEN`` and other
  credentials of the driver;
* keeps usage stats off, a private temp dir and a small object store;
* checks all of that from outside once Ray runs (:func:`check_loopback_only`: every socket
  of every Ray process on loopback), and stops Ray with an error otherwise.

Ray takes 127.0.0.1 as the node address only when ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
was set before ``import ray`` (it is read at import; otherwise Ray replaces 127.0.0.1 by
the machine's address): :func:`keep_ray_local` sets it, and sets Ray's constant the same
way when Ray was imported earlier in the process.

An existing cluster (``address``) is secured by whoever runs it: joining one is refused
unless this driver uses token authentication (``RAY_AUTH_MODE=token`` and the cluster's
token), or the operator says the network is theirs alone (``allow_unauthenticated_cluster``),
which is then printed as a warning.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from mmship.child_env import child_environment, looks_secret
from mmship.core.errors import DeployError

OBJECT_STORE_BYTES = 128 * 1024 * 1024

LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}
#: Where Ray reads its token from, besides ``RAY_AUTH_TOKEN`` and ``RAY_AUTH_TOKEN_PATH``.
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")
TOKEN_AUTH_DOCS = "https://docs.ray.io/en/latest/ray-security/token-auth.html"


def keep_ray_local() -> None:
    """Make a local Ray use 127.0.0.1 as its node address (see the module notes)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
        constants.ENABLE_RAY_CLUSTER = False  # Ray was imported before the variable was set


def listeners_off_loopback(allowed_ports: Collection[int] = ()) -> list[str]:
    """``name ip:port`` for every socket a process started by this one (Ray's GCS,
    raylet, agents, workers, replicas) listens on outside loopback, except
    ``allowed_ports`` (Serve's HTTP port when it is meant to be reachable)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            name, connections = process.name(), process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        for c in connections:
            listening = c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr)
            if listening and c.laddr.port not in allowed_ports and not ipaddress.ip_address(c.laddr.ip).is_loopback:
                mapped = getattr(ipaddress.ip_address(c.laddr.ip), "ipv4_mapped", None)
                if mapped is None or not mapped.is_loopback:
                    found.append(f"{name} {c.laddr.ip}:{c.laddr.port}")
    return found


def check_loopback_only(allowed_ports: Collection[int] = ()) -> None:
    """Stop the local Ray and raise when any of its processes listens off loopback."""
    exposed = listeners_off_loopback(allowed_ports)
    if exposed:
        stop_ray()
        raise DeployError(
            f"the local Ray listened outside loopback ({', '.join(sorted(exposed))}), so it was stopped: anyone who "
            "can reach those ports could run code on this machine",
            hint="this Ray version binds differently from the one mmship was checked with; report it, and until then "
            "run Ray yourself as your network allows and pass --set address=...",
        )


def import_ray() -> Any:
    """``ray`` and ``ray.serve``, or an error saying how to install them."""
    try:
        import ray
        from ray import serve  # noqa: F401
    except ImportError as exc:
        raise DeployError(
            f"the ray target needs Ray Serve, which is not installed ({exc})",
            hint="pip install 'mmship[ray]'",
        ) from exc
    return ray


def loopback_home(root: Path) -> Path:
    """A HOME for Ray holding the local-provider bootstrap config."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    return home


def driver_uses_token_auth(environ: Mapping[str, str] | None = None) -> bool:
    """True when this process would connect with Ray's token authentication: mode
    ``token`` and a token in ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_MODE", "").lower() != "token":
        return False
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = env.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).expanduser().is_file() if path else DEFAULT_TOKEN_FILE.expanduser().is_file()


def check_cluster_auth(address: str, allow_unauthenticated: bool) -> str | None:
    """Refuse to join ``address`` without token authentication unless allowed; returns
    the warning to print when it is allowed, else ``None``."""
    if driver_uses_token_auth():
        return None
    if not allow_unauthenticated:
        raise DeployError(
            f"refusing to join the Ray cluster at {address} without token authentication: on a cluster without it, "
            "anyone who can reach its ports can run code on its machines, including in these replicas",
            hint=f"set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token (see {TOKEN_AUTH_DOCS}), or pass "
            "--set allow_unauthenticated_cluster=true if that cluster's network is reachable by you alone",
        )
    return (
        f"joining the Ray cluster at {address} without token authentication (allow_unauthenticated_cluster): "
        "Ray's own security applies, and anyone who can reach the cluster's ports can run code in it"
    )


@contextlib.contextmanager
def only_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Run the block with ``os.environ`` replaced by ``env`` (restored after). Ray starts
    its processes with a copy of ``os.environ``; call this while nothing else runs."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def ray_child_environment(token: str, home: Path) -> dict[str, str]:
    """What a local Ray's processes start with: the allow-list, the user's own ``RAY_*``
    settings that are not secrets, the loopback settings and this run's token."""
    from mmship.plugins.targets.ray.deployment import LOOPBACK_FLAG

    own = {k: v for k, v in os.environ.items() if k.startswith("RAY_") and not looks_secret(k)}
    return child_environment({
        **own, **LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "HOME": str(home), LOOPBACK_FLAG: "1",
    })


def refresh_auth_state() -> None:
    """Make this process's Ray re-read ``RAY_AUTH_MODE`` and its token from the environment
    (Ray reads them once, when first used: possibly before they were set here). Ray
    versions without token authentication have nothing to refresh."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def start_ray(
    address: str | None, work_dir: Path | None = None, num_cpus: int | None = None,
    allow_unauthenticated_cluster: bool = False,
) -> Any:
    """Join the cluster at ``address`` (token auth required unless allowed), or start a
    loopback-only local one with token auth and no inherited secrets."""
    if not address:
        keep_ray_local()
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address:
        warning = check_cluster_auth(address, allow_unauthenticated_cluster)
        if warning:
            from mmship.core.cli.console import print_warning

            print_warning(warning)
        refresh_auth_state()
        ray.init(address=address, ignore_reinit_error=True, logging_level="WARNING")
        return ray
    root = Path(work_dir or tempfile.mkdtemp(prefix="mmship-ray-"))
    token = secrets.token_hex(32)
    with only_environment(ray_child_environment(token, loopback_home(root))):
        refresh_auth_state()
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            object_store_memory=OBJECT_STORE_BYTES,
            _temp_dir=str(root / "tmp"),
            logging_level="WARNING",
            log_to_driver=False,
        )
    # the driver keeps talking to its cluster: it holds the token (its own secrets it had already)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update({**LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    check_loopback_only()
    return ray


def stop_ray() -> None:
    """Shut Serve and Ray down (a local cluster disappears with them)."""
    ray = import_ray()
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()
