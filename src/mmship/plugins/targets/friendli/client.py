"""A small client for the FriendliAI Dedicated Endpoints REST API (httpx).

Bounded on purpose: every call has a timeout, and retries are few, back off exponentially
and honour ``Retry-After`` up to a cap, so a failing API costs seconds, not the hour the
SDK's defaults allow. Calls that create or bill something (create, chat completions,
embeddings) are retried only when the API cannot have acted on them (429, or a connection
that never opened); for the rest an error says whether the outcome is unknown
(:attr:`FriendliAPIError.outcome_unknown`), so the caller can look before trying again.

The token travels only in the ``Authorization`` header (see :mod:`.auth`): it is never
logged, never part of ``repr``, redacted from every error message in every printed form,
and no error keeps the httpx request (which carries the header) on ``__context__`` or
``__cause__``. Endpoint ids are percent-encoded into one path segment, so an id can never
name another path (``a/../b``, ``x?y``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.auth import (
    DEFAULT_BASE_URL,
    REDACTED,
    TOKEN_ENV,
    check_base_url,
    check_token,
    read_token,
    redact,
    warn_if_foreign,
)

__all__ = [
    "BASE_URL_ENV", "DEFAULT_BASE_URL", "ENDPOINTS", "REDACTED", "TEAM_ENV", "TOKEN_ENV",
    "FriendliAPIError", "FriendliClient", "endpoint_segment", "read_token",
]

TEAM_ENV = "FRIENDLI_TEAM"
#: Where ``mmship invoke friendli://ID`` sends requests (default: FriendliAI's API).
BASE_URL_ENV = "FRIENDLI_BASE_URL"
ENDPOINTS = "/dedicated/beta/endpoint"

log = logging.getLogger("mmship.friendli")

#: Statuses worth another try: 429 for every call (the API refused it before acting);
#: 5xx only for calls that are safe to repeat (a create or a billed generation may have happened).
RETRY_ALWAYS = frozenset({429})
RETRY_IDEMPOTENT = frozenset({500, 502, 503, 504})
#: Transport errors raised before the request left this machine.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class FriendliAPIError(DeployError):
    """The FriendliAI API answered with an error (``status`` is the HTTP status), or the
    call failed on the way; ``outcome_unknown`` when the API may have acted on it anyway."""

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.outcome_unknown = outcome_unknown


def endpoint_segment(endpoint_id: str) -> str:
    """``endpoint_id`` as one percent-encoded path segment (``.`` and ``..`` included)."""
    if not endpoint_id:
        raise DeployError("an endpoint id cannot be empty", hint="pass an endpoint id or name")
    segment = quote(endpoint_id, safe="")
    return segment.replace(".", "%2E") if set(segment) == {"."} else segment


def _hint_for(status: int) -> str:
    if status == 401:
        return f"check that {TOKEN_ENV} holds a valid, unexpired FriendliAI Personal API Key"
    if status == 403:
        return "the key's user lacks access to this project or team: check project_id and team"
    if status == 404:
        return "check the endpoint id or name (`mmship deployments list --target friendli`)"
    if status == 422:
        return "the request was rejected as invalid: check the settings shown in the plan"
    if status == 429:
        return "the API is rate limiting: wait a minute and retry"
    return "FriendliAI's API failed: retry later, or see https://friendli.ai status"


class FriendliClient:
    """Authenticated, bounded calls to ``base_url``; returns decoded JSON bodies."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        team: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = check_token(token, "the FriendliAI token")
        self.base_url = check_base_url(base_url)
        if team is not None:
            check_token(team, "the FriendliAI team id")
        warn_if_foreign(self.base_url)
        self.team = team
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "mmship"}
        if team:
            headers["X-Friendli-Team"] = team
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s), transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"FriendliClient(base_url={self.base_url!r}, team={self.team!r}, token={REDACTED})"

    def __enter__(self) -> FriendliClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def redact(self, text: str) -> str:
        """``text`` with the token replaced by ``***`` in every printed form."""
        return redact(text, self._token)

    # --- transport ---------------------------------------------------------------------

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        delay = self.backoff_s * (2**attempt)
        if response is not None and "retry-after" in response.headers:
            try:
                delay = float(response.headers["retry-after"])
            except ValueError:
                pass
        return max(0.0, min(delay, self.max_wait_s))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one call with bounded retries; raise :class:`FriendliAPIError` on failure."""
        retry_on = RETRY_ALWAYS | (RETRY_IDEMPOTENT if idempotent else frozenset())
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            response: httpx.Response | None = None
            failure, kind, sent = "", "", False
            try:
                response = self._http.request(method, path, json=json, params=clean or None)
            except httpx.TransportError as exc:
                sent, kind = not isinstance(exc, NOT_SENT), type(exc).__name__
                failure = f"{kind}: {exc}"
            # Raised here, outside the except block: the error keeps no __context__ (the
            # httpx exception holds the request and its Authorization header).
            if response is None:
                log.debug("%s %s: %s (attempt %d)", method, path, kind, attempt + 1)
                if attempt >= self.retries or (sent and not idempotent):
                    raise FriendliAPIError(
                        self.redact(f"{method} {self.base_url}{path} failed: {failure}"),
                        hint="check the network and the base URL, then retry"
                        + ("; the API may have acted on the request before the connection failed" if sent else ""),
                        outcome_unknown=sent,
                    )
            else:
                log.debug("%s %s -> %d (attempt %d)", method, path, response.status_code, attempt + 1)
                if response.status_code < 400:
                    return self._decode(response)
                if response.status_code not in retry_on or attempt >= self.retries:
                    raise self._error(method, path, response)
            self._sleep(self._wait(attempt, response))
            attempt += 1

    def _decode(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def _error(self, method: str, path: str, response: httpx.Response) -> FriendliAPIError:
        detail: Any = response.text.strip()
        try:
            body = response.json()
            if isinstance(body, dict):
                detail = body.get("detail", body.get("message", body.get("error", detail)))
                if isinstance(detail, list):  # FastAPI-style validation errors (HTTPValidationError)
                    detail = "; ".join(
                        f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
                        for item in detail if isinstance(item, dict)
                    )
        except ValueError:
            pass
        detail = self.redact(str(detail))[:500]
        status = response.status_code
        return FriendliAPIError(
            f"FriendliAI answered {status} to {method} {path}: {detail}",
            status=status,
            hint=_hint_for(status),
            outcome_unknown=status >= 500,
        )

    # --- Dedicated Endpoints -------------------------------------------------------------

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dedicated/beta/endpoint``: the new endpoint's status (it has no id)."""
        return self.request("POST", ENDPOINTS, json=body, idempotent=False) or {}

    def list_endpoints(self, project_id: str | None, *, limit: int = 50, max_pages: int = 20) -> dict[str, dict[str, Any]]:
        """``GET /dedicated/beta/endpoint?project_id=``: endpoint id -> status, every page
        (the whole team when ``project_id`` is None)."""
        result: dict[str, dict[str, Any]] = {}
        cursor = None
        for _ in range(max_pages):
            page = self.request("GET", ENDPOINTS, params={"project_id": project_id, "limit": limit, "cursor": cursor}) or {}
            data = page.get("data") or {}
            if isinstance(data, dict):
                result.update({str(k): v for k, v in data.items() if isinstance(v, dict)})
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return result

    def _endpoint(self, endpoint_id: str, suffix: str = "") -> str:
        return f"{ENDPOINTS}/{endpoint_segment(endpoint_id)}{suffix}"

    def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``GET /dedicated/beta/endpoint/{id}``: the endpoint's spec (name, projectId, replicas...)."""
        return self.request("GET", self._endpoint(endpoint_id)) or {}

    def get_status(self, endpoint_id: str) -> dict[str, Any]:
        """``GET /dedicated/beta/endpoint/{id}/status``: status, phase, errorCode."""
        return self.request("GET", self._endpoint(endpoint_id, "/status")) or {}

    def delete_endpoint(self, endpoint_id: str) -> Any:
        """``DELETE /dedicated/beta/endpoint/{id}``."""
        return self.request("DELETE", self._endpoint(endpoint_id))

    def sleep_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``PUT /dedicated/beta/endpoint/{id}/sleep``."""
        return self.request("PUT", self._endpoint(endpoint_id, "/sleep")) or {}

    def wake_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``PUT /dedicated/beta/endpoint/{id}/wake``."""
        return self.request("PUT", self._endpoint(endpoint_id, "/wake")) or {}

    def restart_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``PUT /dedicated/beta/endpoint/{id}/restart`` (for FAILED or TERMINATED endpoints)."""
        return self.request("PUT", self._endpoint(endpoint_id, "/restart"), idempotent=False) or {}

    # --- inference (billed: never repeated once sent) -------------------------------------

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dedicated/v1/chat/completions`` (``model`` is the endpoint id)."""
        return self.request("POST", "/dedicated/v1/chat/completions", json=body, idempotent=False) or {}

    def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dedicated/v1/embeddings`` (``model`` is the endpoint id)."""
        return self.request("POST", "/dedicated/v1/embeddings", json=body, idempotent=False) or {}
