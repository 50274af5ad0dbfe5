"""HTTP error mapping: every error body is ``{"error": "..."}`` with the fix in it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mmship.core.errors import InputSpecError, MmshipError
from mmship.serving.batcher import DeadlineExceededError, QueueFullError, RequestTooLargeError


class HTTPProblem(Exception):
    """An error with an HTTP status and optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_text(exc: MmshipError) -> str:
    """Message and fix as one line."""
    return f"{exc.message}. Fix: {exc.hint}" if exc.hint else exc.message


def _json(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map mmship, batching and validation errors to JSON error responses."""

    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> JSONResponse:
        return _json(exc.status, exc.message, exc.headers)

    @app.exception_handler(InputSpecError)
    async def _input(request: Request, exc: InputSpecError) -> JSONResponse:
        return _json(400, error_text(exc))

    @app.exception_handler(MmshipError)
    async def _mmship(request: Request, exc: MmshipError) -> JSONResponse:
        return _json(400, error_text(exc))

    @app.exception_handler(QueueFullError)
    async def _full(request: Request, exc: QueueFullError) -> JSONResponse:
        return _json(503, str(exc), {"Retry-After": str(max(1, round(exc.retry_after)))})

    @app.exception_handler(RequestTooLargeError)
    async def _too_large(request: Request, exc: RequestTooLargeError) -> JSONResponse:
        return _json(400, str(exc))

    @app.exception_handler(DeadlineExceededError)
    async def _deadline(request: Request, exc: DeadlineExceededError) -> JSONResponse:
        return _json(504, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {error.get('msg')}")
        return _json(400, "invalid request body: " + "; ".join(parts) + ". Fix: see /docs for the request schema")
