"""One-image requests at concurrency 1 against a server started in a child process: what
``c1_breakdown.py`` and ``c1_run_alone.py`` share."""

from __future__ import annotations

import base64
import http.client
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def one_image_server(server_code: str, args: list[str]) -> Iterator[Callable[[], float]]:
    """Run ``server_code`` (``python -c``) with ``args`` and ``--port``, wait until it is
    ready, and yield a call that sends one-image ``POST /embed`` requests (the shipped probe
    photo, base64 JSON) over one keep-alive connection and returns each round trip in ms.
    The server gets SIGTERM on exit and is waited for."""
    from mmship.bench.loadgen import default_image
    from mmship.serving.process import free_port, wait_ready

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "server.log"
        child = subprocess.Popen(
            [sys.executable, "-c", server_code, *args, "--port", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", child, 300, log)
            body = json.dumps({"images": [base64.b64encode(default_image()).decode()]}).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port)

            def round_trip() -> float:
                start = time.perf_counter()
                conn.request("POST", "/embed", body=body, headers={"content-type": "application/json"})
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    raise SystemExit(f"the server answered {answer.status}")
                return (time.perf_counter() - start) * 1000

            yield round_trip
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
