"""Start or join Ray, keeping a local cluster on the loopback interface.

Out of the box a local Ray binds the machine's non-loopback address and its dashboard
probes cloud metadata services. What kept every connection on 127.0.0.1 here (measured,
see the project's FACTS notes): ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, ``HOME`` pointing
at a folder holding ``ray_bootstrap_config.yaml`` with ``provider: {type: local}``,
``RAY_USAGE_STATS_ENABLED=0``, ``RAY_AUTH_MODE=disabled``, a private temp dir, and a
small object store.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from mmship.core.errors import DeployError

OBJECT_STORE_BYTES = 128 * 1024 * 1024

LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}


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


def start_ray(address: str | None, work_dir: Path | None = None, num_cpus: int | None = None) -> Any:
    """Join the cluster at ``address``, or start a loopback-only local one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address:
        ray.init(address=address, ignore_reinit_error=True, logging_level="WARNING")
        return ray
    root = Path(work_dir or tempfile.mkdtemp(prefix="mmship-ray-"))
    os.environ.update(LOOPBACK_ENV)
    os.environ["HOME"] = str(loopback_home(root))
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
    return ray


def stop_ray() -> None:
    """Shut Serve and Ray down (a local cluster disappears with them)."""
    ray = import_ray()
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()
