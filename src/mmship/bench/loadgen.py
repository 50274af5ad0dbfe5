"""The load generator: N concurrent workers, each sending one item per request, for a
fixed time (and optionally a fixed count) per concurrency level.

Each request body is encoded once, through the payload codecs, before the clock
starts: the bench measures the server, not the client's encoding. One warm-up request
per modality runs first (with the client's retries); when it fails, the run stops with
the server's message instead of timing errors. During the timed run nothing is
retried: a 503 counts as an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from mmship.bench.results import BenchResult, LevelResult
from mmship.core.errors import MmshipError
from mmship.core.payload import EncodedRequest, PayloadInputs

MODALITIES = ("image", "text")
BENCH_PROTOCOLS = ("embed", "v2", "v2-binary")
DEFAULT_TEXT = "a photo of a cat"
#: Pause after a transport failure, so a dead server does not spin the workers.
_ERROR_PAUSE_S = 0.01


def default_image() -> bytes:
    """The bundled probe photo ``mmship/data/probe/cat.jpg``."""
    from importlib.resources import files

    return files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()


@dataclass
class BenchPlan:
    """What to run: levels, duration, modalities, the item sent and how."""

    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16])
    duration_s: float = 10.0
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))
    image: bytes | None = None
    text: str = DEFAULT_TEXT
    protocol: str = "embed"
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = 30.0
    max_requests: int | None = None
    warmup: bool = True

    def validate(self) -> None:
        """Raise :class:`MmshipError` for a plan that cannot run."""
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise MmshipError(f"concurrency levels must be positive, got {self.concurrency}", hint="e.g. --concurrency 1,4,16")
        if self.duration_s <= 0:
            raise MmshipError(f"duration must be positive, got {self.duration_s}", hint="e.g. --duration 10")
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities:
            raise MmshipError(f"unknown modality {unknown or self.modalities}", hint="use image, text or image,text")
        if self.protocol not in BENCH_PROTOCOLS:
            raise MmshipError(f"unknown protocol {self.protocol!r}", hint=f"use one of {', '.join(BENCH_PROTOCOLS)}")
        if self.max_requests is not None and self.max_requests < 1:
            raise MmshipError(f"max requests must be positive, got {self.max_requests}", hint="e.g. --max-requests 1000")


def build_requests(client: object, plan: BenchPlan) -> dict[str, EncodedRequest]:
    """One encoded request per modality, through the payload codec of the plan's protocol."""
    from mmship.client import Client

    assert isinstance(client, Client)
    requests = {}
    for modality in plan.modalities:
        inputs = PayloadInputs()
        if modality == "image":
            inputs.images = [plan.image if plan.image is not None else default_image()]
        else:
            inputs.texts = [plan.text]
        if plan.protocol != "embed":
            inputs.model = client.model_name()
        requests[modality] = client.encode(inputs, plan.protocol)
    return requests


async def run_level(
    url: str,
    request: EncodedRequest,
    modality: str,
    concurrency: int,
    duration_s: float,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    max_requests: int | None = None,
) -> LevelResult:
    """Run ``concurrency`` closed-loop workers for ``duration_s`` seconds (or until
    ``max_requests`` were sent) and measure every request."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    result = LevelResult(modality, concurrency, duration_s)
    sent = 0
    async with httpx.AsyncClient(base_url=url, headers=headers or {}, timeout=timeout_s, limits=limits) as http:
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
                sent += 1
                start = time.perf_counter()
                try:
                    response = await http.request(request.method, request.path, content=request.body, headers=request.headers)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                    await asyncio.sleep(_ERROR_PAUSE_S)
                else:
                    if response.status_code < 400:
                        result.latencies_ms.append((time.perf_counter() - start) * 1000.0)
                        continue
                    kind = f"HTTP {response.status_code}"
                result.errors += 1
                result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1

        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), duration_s + timeout_s + 5)
        result.duration_s = time.perf_counter() - began
    return result


def bench_url(url: str, plan: BenchPlan, on_level: Callable[[LevelResult], None] | None = None) -> BenchResult:
    """Benchmark the server at ``url``: every modality at every concurrency level.

    :param on_level: called after each level (progress output).
    """
    from mmship.client import Client

    plan.validate()
    with Client(url, api_key=plan.api_key, timeout=plan.timeout_s, model=plan.model) as client:
        requests = build_requests(client, plan)
        model = client.model
        if plan.warmup:
            for modality, request in requests.items():
                try:
                    client.send(request)
                except MmshipError as exc:
                    raise MmshipError(f"warm-up {modality} request failed: {exc.message}", hint=exc.hint) from None
        headers = dict(client.headers)
    result = BenchResult(url=url, protocol=plan.protocol, model=model, duration_s=plan.duration_s)
    for modality, request in requests.items():
        for concurrency in plan.concurrency:
            level = asyncio.run(
                run_level(
                    url, request, modality, concurrency, plan.duration_s,
                    headers=headers, timeout_s=plan.timeout_s, max_requests=plan.max_requests,
                )
            )
            result.levels.append(level)
            if on_level is not None:
                on_level(level)
    return result
