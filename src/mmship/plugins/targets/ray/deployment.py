"""The Ray Serve deployment: each replica loads the bundle (or several) and serves mmship's app.

The replica builds the same FastAPI app as ``mmship serve`` (OIP v2, /embed, /classify,
/metrics), with every bundle of the deployment under its name, exactly as
``mmship serve B1 B2`` serves them; Ray Serve runs its lifespan, so graphs are warmed up before traffic arrives.
Batching happens inside each replica, so ``max_ongoing_requests`` is set well above the
batch size (Ray's default of 5 would cap every batch at 5).
"""

from __future__ import annotations

import os
from typing import Any

#: Set in the environment of a local (loopback-only) Ray's processes.
LOOPBACK_FLAG = "MMSHIP_RAY_LOOPBACK"


def bind_replica_grpc_to_loopback() -> None:
    """On a loopback-only Ray, make this replica's inter-deployment gRPC server listen on
    127.0.0.1. Ray Serve binds it to ``[::]`` (every interface) with no setting to change
    it; the replica looks the helper up when it starts that server, after this class is
    built. The deploy checks every Ray listener afterwards, so a Ray that ignores this is
    caught, not trusted."""
    if os.environ.get(LOOPBACK_FLAG) != "1":
        return
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "mmship_loopback", False):
        return

    def on_loopback(server: Any, address: str) -> Any:
        host, _, port = address.rpartition(":")
        if host in ("[::]", "0.0.0.0", ""):
            address = f"127.0.0.1:{port}"
        return original(server, address)

    on_loopback.mmship_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = on_loopback


class MmshipReplica:
    """One replica: the verified bundles, their engines, and the mmship app over them."""

    def __init__(
        self, bundle_path: str | list[str], settings: dict[str, Any], precisions: dict[str, str] | None = None,
    ) -> None:
        bind_replica_grpc_to_loopback()
        from mmship.serving.serve import build_engines
        from mmship.serving.settings import ServerSettings

        self.settings = ServerSettings(**settings)
        self.engines = build_engines(bundle_path, self.settings, precisions)

    def __serve_build_asgi_app__(self) -> Any:
        from mmship.serving.app import create_app

        return create_app(self.engines, self.settings)


def build_application(
    bundle_path: str | list[str], settings: dict[str, Any], options: dict[str, Any], precisions: dict[str, str] | None = None,
) -> Any:
    """A bound Ray Serve application for the bundle (or bundles: one app serving them all,
    each at its precision in ``precisions``) with the given deployment options."""
    from ray import serve

    deployment = serve.deployment(serve.ingress()(MmshipReplica), **options)
    return deployment.bind(bundle_path, settings, precisions)
