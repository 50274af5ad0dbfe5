"""Run the local server: load and verify the bundles, build the app, hand it to uvicorn.

uvicorn stops accepting on SIGTERM/SIGINT and waits up to ``drain_timeout_s`` for the
requests in flight; the app's shutdown then drains the batchers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmship.serving.served_bundles import (
    ServedBundle,
    load_bundles,
    parse_bundle_args,
    run_gate,
)
from mmship.serving.settings import ServerSettings

#: Bundles to serve: one folder, or ``mmship serve`` arguments (``PATH``, ``NAME=PATH``,
#: folders of bundles).
BundleArgs = str | Path | Sequence[str | Path]


def served_bundles(bundles: BundleArgs) -> list[ServedBundle]:
    """The bundles an argument list names (see :func:`parse_bundle_args`)."""
    if isinstance(bundles, (str, Path)):
        bundles = [bundles]
    return parse_bundle_args([str(b) for b in bundles])


def build_engines(
    bundles: BundleArgs, settings: ServerSettings, precisions: dict[str, str] | None = None, run_slots: int | None = None,
) -> list[tuple[str, Any]]:
    """(name, engine) per bundle: each at its precision (``precisions[name]``, else
    ``settings.precision``, else the bundle's), all passing one run gate (see
    :func:`~mmship.serving.served_bundles.run_gate`)."""
    from mmship.core.errors import ConfigError
    from mmship.serving.engine import Engine

    loaded = load_bundles(served_bundles(bundles))
    unknown = sorted(set(precisions or {}) - {name for name, _ in loaded})
    if unknown:
        raise ConfigError(
            f"--precision names {', '.join(map(repr, unknown))}, which is not served "
            f"(served: {', '.join(name for name, _ in loaded)})",
            hint="use a served name in --precision NAME=PRECISION",
        )
    gate = run_gate(len(loaded), run_slots)
    return [
        (name, Engine(
            bundle, precision=(precisions or {}).get(name, settings.precision), threads=settings.threads,
            accelerator=settings.accelerator, gate=gate, runtime=settings.runtime, streams=settings.streams,
        ))
        for name, bundle in loaded
    ]


def build_server(
    bundles: BundleArgs, settings: ServerSettings, precisions: dict[str, str] | None = None, run_slots: int | None = None,
) -> Any:
    """A configured ``uvicorn.Server`` for the bundles (not started)."""
    import uvicorn

    from mmship.serving.app import create_app

    settings.check_safe()
    app = create_app(build_engines(bundles, settings, precisions, run_slots), settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s), server_header=False,
    )
    return uvicorn.Server(config)


def serve(bundles: BundleArgs, settings: ServerSettings, precisions: dict[str, str] | None = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM."""
    server = build_server(bundles, settings, precisions)
    server.run()
