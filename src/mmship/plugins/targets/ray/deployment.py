"""The Ray Serve deployment: each replica loads the bundle and serves mmship's app.

The replica builds the same FastAPI app as ``mmship serve`` (OIP v2, /embed, /classify,
/metrics); Ray Serve runs its lifespan, so graphs are warmed up before traffic arrives.
Batching happens inside each replica, so ``max_ongoing_requests`` is set well above the
batch size (Ray's default of 5 would cap every batch at 5).
"""

from __future__ import annotations

from typing import Any


class MmshipReplica:
    """One replica: a verified bundle, its engine, and the mmship app over it."""

    def __init__(self, bundle_path: str, settings: dict[str, Any]) -> None:
        from mmship.core.bundle import Bundle
        from mmship.serving.engine import Engine
        from mmship.serving.settings import ServerSettings

        self.settings = ServerSettings(**settings)
        self.engine = Engine(
            Bundle.load(bundle_path), precision=self.settings.precision, threads=self.settings.threads,
            accelerator=self.settings.accelerator,
        )

    def __serve_build_asgi_app__(self) -> Any:
        from mmship.serving.app import create_app

        return create_app(self.engine, self.settings)


def build_application(bundle_path: str, settings: dict[str, Any], options: dict[str, Any]) -> Any:
    """A bound Ray Serve application for the bundle with the given deployment options."""
    from ray import serve

    deployment = serve.deployment(serve.ingress()(MmshipReplica), **options)
    return deployment.bind(bundle_path, settings)
