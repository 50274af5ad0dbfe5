"""Run mmship's server in a background thread on 127.0.0.1 for tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mmship.serving.process import free_port  # noqa: F401  (re-exported for tests)


@contextlib.contextmanager
def running_server(
    bundle: Path | list[Path], ready_timeout: float = 60.0, precisions: dict[str, str] | None = None,
    run_slots: int | None = None, **settings: Any,
) -> Iterator[str]:
    """Serve ``bundle`` (or several) in a thread; yields the base URL; stops (draining) on exit."""
    from mmship.serving.serve import build_server
    from mmship.serving.settings import ServerSettings

    port = free_port()
    server = build_server(bundle, ServerSettings(host="127.0.0.1", port=port, **settings), precisions, run_slots)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not thread.is_alive():
            raise RuntimeError("server thread died before it was ready")
        time.sleep(0.05)
    else:
        raise RuntimeError("server not ready in time")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def running_app(app: Any, ready_timeout: float = 60.0) -> Iterator[str]:
    """Serve an already built app (``create_app``) in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not thread.is_alive():
            raise RuntimeError("server thread died before it was ready")
        time.sleep(0.05)
    else:
        raise RuntimeError("server not ready in time")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
