"""Run the local server: load and verify a bundle, build the app, hand it to uvicorn.

uvicorn stops accepting on SIGTERM/SIGINT and waits up to ``drain_timeout_s`` for the
requests in flight; the app's shutdown then drains the batchers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmship.core.bundle import Bundle
from mmship.serving.settings import ServerSettings


def build_server(bundle_path: str | Path, settings: ServerSettings) -> Any:
    """A configured ``uvicorn.Server`` for the bundle (not started)."""
    import uvicorn

    from mmship.serving.app import create_app
    from mmship.serving.engine import Engine

    settings.check_safe()
    bundle = Bundle.load(bundle_path)
    engine = Engine(
        bundle, precision=settings.precision, threads=settings.threads, accelerator=settings.accelerator,
        runtime=settings.runtime,
    )
    app = create_app(engine, settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s), server_header=False,
    )
    return uvicorn.Server(config)


def serve(bundle_path: str | Path, settings: ServerSettings) -> None:
    """Serve in the foreground until SIGINT/SIGTERM."""
    server = build_server(bundle_path, settings)
    server.run()
