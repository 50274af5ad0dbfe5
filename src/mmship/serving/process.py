"""``mmship serve`` as a child process: start it, wait until it is ready, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from mmship.child_env import child_environment
from mmship.core.errors import DeployError


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def spawn_server(
    serve_args: list[str], log: IO[bytes] | int | None = subprocess.DEVNULL, api_key: str | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m mmship serve ARGS`` in its own session with an allow-listed
    environment (:func:`mmship.child_env.child_environment`: no tokens of the parent);
    ``api_key`` travels to it as ``MMSHIP_API_KEY`` in that environment, never in a file."""
    env = child_environment({"MMSHIP_API_KEY": api_key} if api_key is not None else None)
    return subprocess.Popen(
        [sys.executable, "-m", "mmship", "serve", *serve_args], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env=env,
    )


def wait_ready(url: str, child: subprocess.Popen[bytes], timeout_s: float, log_path: Path | None = None) -> None:
    """Poll ``/v2/health/ready`` until 200; raise with the log's tail if the child exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
            raise DeployError(
                f"the server exited with code {child.returncode}" + (f"; its log ends:\n{tail}" if tail else ""),
                hint=f"see {log_path}" if log_path else "run `mmship serve` in the foreground to see why",
            )
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process(child.pid)
    raise DeployError(f"the server was not ready within {timeout_s:.0f} s", hint="check the bundle with `mmship inspect`")


def stop_process(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM (requests in flight drain), then SIGKILL after ``timeout_s``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                return
        except ChildProcessError:  # not our child: poll for existence instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def served_bundle(
    bundle: str | Path | list[str | Path], extra_args: list[str] | None = None, timeout_s: float = 300.0,
    api_key: str | None = None,
) -> Iterator[str]:
    """Serve ``bundle`` (or several: ``mmship serve`` arguments, ``NAME=PATH`` too) on a free
    loopback port for the duration of the block (requiring ``api_key`` when given)."""
    port = free_port()
    bundles = [str(b) for b in bundle] if isinstance(bundle, list) else [str(bundle)]
    child = spawn_server([*bundles, "--host", "127.0.0.1", "--port", str(port), *(extra_args or [])], api_key=api_key)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, child, timeout_s)
        yield url
    finally:
        stop_process(child.pid)
