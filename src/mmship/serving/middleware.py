"""ASGI middleware: body size cap, bearer API key, request metrics."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from mmship.serving.metrics import ServerMetrics

#: Request-scope key where a route leaves the served model's name that answered (the
#: ``model`` label of the request metrics; absent: ``""``).
MODEL_SCOPE_KEY = "mmship.model"

#: Paths answered without the API key (exact paths, no prefixes): the liveness and
#: readiness probes, and the try-it page at / (static, holding no data: what it calls
#: needs the key). The docs and the OpenAPI document stay behind the key when one is set.
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/"})
#: Routes counted under their own name in the request metrics.
METRIC_ROUTES = frozenset({
    "/embed", "/classify", "/rank", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready", "/v2/repository/index",
    "/v1/embeddings", "/v1/models", "/",
})


async def _send_error(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Rejects oversized bodies (413) and requests without the API key (401); records
    every request's route, status and latency."""

    def __init__(self, app: Any, metrics: ServerMetrics, max_body_bytes: int, api_key: str | None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key

    def _route(self, scope: dict[str, Any]) -> str:
        path = scope.get("path", "")
        if path.startswith("/v2/models/"):
            return "/v2/models/{name}/infer" if path.endswith("/infer") else "/v2/models/{name}"
        return path if path in METRIC_ROUTES else "other"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        start = time.perf_counter()
        status_box = {"status": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_wrapper)
        finally:
            model = str(scope.get(MODEL_SCOPE_KEY, ""))
            self.metrics.requests.labels(route, str(status_box["status"]), model).inc()
            self.metrics.latency.labels(route, model).observe(time.perf_counter() - start)

    async def _guarded(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # HTTP header bytes are latin-1 (as Starlette reads them): any byte decodes.
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        if self.api_key and path not in OPEN_PATHS:
            given = headers.get("authorization", "")
            token = given[7:] if given.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(token.encode("latin-1"), self.api_key.encode("latin-1")):
                await _send_error(
                    send, 401, "missing or wrong API key. Fix: send the header 'Authorization: Bearer <key>'",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _send_error(send, 413, self._too_large(int(length)))
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _send_error(send, 413, self._too_large(received))

    def _too_large(self, size: int) -> str:
        return (
            f"request body of {size} bytes is over the limit of {self.max_body_bytes} bytes. "
            "Fix: send fewer or smaller images per request, or start the server with a larger --max-body-mb"
        )


class _BodyTooLarge(Exception):
    pass
