"""A lean closed-loop load generator on aiohttp, for the HTTP-path and overload benchmarks.

The client shares the machine's cores with the server, so it has to cost little: aiohttp
with one keep-alive connection per worker, each request body encoded once before the
clock starts. On a 503 a worker waits ``Retry-After`` seconds (capped by ``max_pause_s``)
before its next request, as a well-behaved client does; ``max_pause_s=0`` makes it come
straight back (a hostile client).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import psutil

CAPTION = "a photo of a cat sitting on a wooden table next to a cup of coffee"


def embed_body(modality: str, image: bytes | None = None, text: str = CAPTION) -> bytes:
    """A ``POST /embed`` body with one image (base64) or one text."""
    if modality == "image":
        if image is None:
            from mmship.bench.loadgen import default_image

            image = default_image()
        return json.dumps({"images": [base64.b64encode(image).decode()]}).encode()
    return json.dumps({"texts": [text]}).encode()


@dataclass
class Level:
    """What one level measured."""

    concurrency: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    refused: int = 0
    refused_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def goodput(self) -> float:
        """Answered requests (2xx) per second."""
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float, values: list[float] | None = None) -> float | None:
        data = self.latencies_ms if values is None else values
        return float(np.percentile(data, q)) if data else None

    def summary(self) -> dict:
        return {
            "concurrency": self.concurrency, "seconds": round(self.seconds, 2), "ok": len(self.latencies_ms),
            "goodput": round(self.goodput, 1), "p50_ms": _r(self.percentile(50)), "p99_ms": _r(self.percentile(99)),
            "refused": self.refused, "refused_p50_ms": _r(self.percentile(50, self.refused_ms)),
            "errors": self.errors, "server_cpu_s": round(self.server_cpu_s, 2), "client_cpu_s": round(self.client_cpu_s, 2),
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def _run(url: str, body: bytes, concurrency: int, duration_s: float, pid: int | None, max_pause_s: float,
               path: str) -> Level:
    level = Level(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        stop = time.perf_counter() + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    async with session.post(url + path, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                        retry = response.headers.get("retry-after", "1")
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    kind = type(exc).__name__
                    level.errors[kind] = level.errors.get(kind, 0) + 1
                    await asyncio.sleep(0.05)
                    continue
                took = (time.perf_counter() - start) * 1000
                if status < 400:
                    level.latencies_ms.append(took)
                elif status == 503:
                    level.refused += 1
                    level.refused_ms.append(took)
                    pause = min(float(retry) if retry.replace(".", "", 1).isdigit() else 1.0, max_pause_s)
                    pause = min(pause, stop - time.perf_counter())  # a pause past the end would idle the server
                    if pause > 0:
                        await asyncio.sleep(pause)
                else:
                    level.errors[f"HTTP {status}"] = level.errors.get(f"HTTP {status}", 0) + 1

        cpu, own = _cpu(pid), _cpu(os.getpid())
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        level.seconds = time.perf_counter() - began
        level.server_cpu_s = _cpu(pid) - cpu
        level.client_cpu_s = _cpu(os.getpid()) - own
    return level


def run_level(url: str, body: bytes, concurrency: int, duration_s: float, *, pid: int | None = None,
              max_pause_s: float = 5.0, path: str = "/embed") -> Level:
    """Run ``concurrency`` closed-loop workers for ``duration_s``; ``pid``: the server, whose
    CPU time over the level is recorded."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_run(url, body, concurrency, duration_s, pid, max_pause_s, path))


def raise_file_limit(wanted: int = 8192) -> None:
    """Room for hundreds of connections."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def machine_note() -> str:
    """CPU model, cores and load: the conditions of a run on a shared machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load}"
