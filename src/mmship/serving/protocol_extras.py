"""The optional parts of a codec: its model list route and its own error body.

* ``models_route`` (e.g. ``GET /v1/models``) and ``<route>/{model}`` answer the served
  models' cards (:class:`~mmship.serving.models.ServedModels`) encoded by the codec.
* ``error_prefix`` (e.g. ``/v1/``): every error answered under it is re-encoded by the
  codec, whichever layer answered it: the API-key and body-size guard (401, 413), a route's
  error handlers (400, 404, 503, 504) or the router (an unknown path, a wrong method).
  :class:`ProtocolErrorMiddleware` sits outside all of them and rewrites the status line's
  body; the exception that was answered (if any) travels in the request scope so the codec
  can name the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from mmship.core.codec import Codec
from mmship.core.errors import RequestFieldError
from mmship.serving.http_errors import error_text
from mmship.serving.models import ServedModels

#: Request-scope key holding the exception an error handler answered.
ERROR_SCOPE_KEY = "mmship.error"


def mount_protocol_extras(app: FastAPI, codecs: Iterable[type[Codec[Any]]], models: ServedModels) -> None:
    """Mount the codecs' model-list routes, answer :class:`RequestFieldError` with its own
    status, and re-encode errors under the codecs' error prefixes."""
    codecs = list(codecs)
    for cls in codecs:
        if cls.models_route:
            _mount_models(app, cls(), cls.models_route, models)

    @app.exception_handler(RequestFieldError)
    async def _field_error(request: Request, exc: RequestFieldError) -> JSONResponse:
        return JSONResponse({"error": error_text(exc)}, status_code=exc.status)

    remember_errors(app)
    owners = [(cls.error_prefix, cls()) for cls in codecs if cls.error_prefix]
    if owners:
        app.add_middleware(ProtocolErrorMiddleware, owners=owners)


def _mount_models(app: FastAPI, codec: Codec[Any], route: str, models: ServedModels) -> None:
    def answer(encoded: Any) -> Response:
        return Response(encoded.body, status_code=encoded.status, headers=encoded.headers,
                        media_type=encoded.headers.get("content-type", "application/json"))

    async def list_models() -> Response:
        return answer(codec.encode_models(models.cards()))

    async def one_model(model: str) -> Response:
        return answer(codec.encode_models([models.card(model)], one=True))

    tags = [codec.name]
    app.add_api_route(route, list_models, methods=["GET"], name=f"{codec.name}-models", tags=tags)
    app.add_api_route(route.rstrip("/") + "/{model:path}", one_model, methods=["GET"], name=f"{codec.name}-model", tags=tags)


def remember_errors(app: FastAPI) -> None:
    """Make every installed error handler leave the exception it answers in the request
    scope (:data:`ERROR_SCOPE_KEY`)."""
    for key, handler in list(app.exception_handlers.items()):
        if getattr(handler, "__mmship_remembers__", False):
            continue
        app.exception_handlers[key] = _remembering(handler)


def _remembering(handler: Callable[[Request, Any], Awaitable[Response] | Response]) -> Any:
    async def remembering(request: Request, exc: Exception) -> Response:
        request.scope[ERROR_SCOPE_KEY] = exc
        answer = handler(request, exc)
        return await answer if isinstance(answer, Awaitable) else answer

    remembering.__mmship_remembers__ = True  # type: ignore[attr-defined]
    return remembering


def error_message(body: bytes, status: int, scope: dict[str, Any]) -> str:
    """The text of an error answer: ``{"error": ...}`` or Starlette's ``{"detail": ...}``;
    the router's bare "Not Found" gets the method and path."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return doc["error"]
    detail = doc.get("detail") if isinstance(doc, dict) else None
    text = detail if isinstance(detail, str) else json.dumps(detail) if detail is not None else body.decode("utf-8", "replace")
    if status in (404, 405) and text in ("Not Found", "Method Not Allowed"):
        return f"{text}: {scope.get('method', '')} {scope.get('path', '')}. Fix: check the method and path in /docs"
    return text


class ProtocolErrorMiddleware:
    """Re-encodes error answers under a codec's error prefix with that codec."""

    def __init__(self, app: Any, owners: list[tuple[str, Codec[Any]]]) -> None:
        self.app = app
        self.owners = owners

    def _owner(self, path: str) -> Codec[Any] | None:
        return next((codec for prefix, codec in self.owners if path.startswith(prefix)), None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        codec = self._owner(scope.get("path", "")) if scope["type"] == "http" else None
        if codec is None:
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                    return
                held["start"] = message
                return
            if message["type"] != "http.response.body" or "start" not in held:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            start = held.pop("start")
            status = start["status"]
            encoded = codec.encode_error(status, error_message(b"".join(chunks), status, scope), scope.get(ERROR_SCOPE_KEY))
            kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")]
            headers = kept + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in encoded.headers.items()]
            headers.append((b"content-length", str(len(encoded.body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": encoded.body})

        await self.app(scope, receive, rewrite)
