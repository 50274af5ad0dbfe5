"""A small client for the FriendliAI Dedicated Endpoints REST API (httpx).

Bounded on purpose: every call has a timeout, and retries (429, 5xx, connection errors)
are few, back off exponentially and honour ``Retry-After`` up to a cap, so a failing API
costs seconds, not the hour the SDK's defaults allow. The token travels only in the
``Authorization`` header: it is never logged, never part of ``repr`` and is redacted from
every error message (an API that echoes it back cannot leak it through mmship).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mmship.core.errors import DeployError

DEFAULT_BASE_URL = "https://api.friendli.ai"
TOKEN_ENV = "FRIENDLI_TOKEN"
TEAM_ENV = "FRIENDLI_TEAM"
ENDPOINTS = "/dedicated/beta/endpoint"
REDACTED = "***"

log = logging.getLogger("mmship.friendli")

#: Statuses worth another try; 500 only for idempotent calls (a create may have happened).
RETRY_ALWAYS = frozenset({429, 503})
RETRY_IDEMPOTENT = frozenset({500, 502, 504})


class FriendliAPIError(DeployError):
    """The FriendliAI API answered with an error (``status`` is the HTTP status)."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def read_token(env: Mapping[str, str] | None = None) -> str:
    """The personal access token from ``FRIENDLI_TOKEN``, or an error saying how to set it."""
    token = (env if env is not None else os.environ).get(TOKEN_ENV, "").strip()
    if not token:
        raise DeployError(
            f"no FriendliAI token: the environment variable {TOKEN_ENV} is not set",
            hint=f"create a personal access token in Friendli Suite (Settings > Tokens) and run "
            f"`export {TOKEN_ENV}=flp_...`; mmship never reads tokens from files or flags",
        )
    return token


def _hint_for(status: int) -> str:
    if status == 401:
        return f"check that {TOKEN_ENV} holds a valid, unexpired FriendliAI personal access token"
    if status == 403:
        return "the token's user lacks access to this project or team: check project_id and team"
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
        self._token = token
        self.base_url = base_url.rstrip("/")
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
        """``text`` with the token replaced by ``***``."""
        return text.replace(self._token, REDACTED) if self._token else text

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
            try:
                response = self._http.request(method, path, json=json, params=clean or None)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                log.debug("%s %s: %s (attempt %d)", method, path, type(exc).__name__, attempt + 1)
                if attempt >= self.retries or (sent and not idempotent):
                    raise FriendliAPIError(
                        self.redact(f"{method} {self.base_url}{path} failed: {type(exc).__name__}: {exc}"),
                        hint="check the network and the base URL, then retry",
                    ) from None
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
                if isinstance(detail, list):  # FastAPI-style validation errors
                    detail = "; ".join(
                        f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}" for item in detail
                    )
        except ValueError:
            pass
        detail = self.redact(str(detail))[:500]
        return FriendliAPIError(
            f"FriendliAI answered {response.status_code} to {method} {path}: {detail}",
            status=response.status_code,
            hint=_hint_for(response.status_code),
        )

    # --- Dedicated Endpoints -------------------------------------------------------------

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dedicated/beta/endpoint``: the new endpoint's status (it has no id)."""
        return self.request("POST", ENDPOINTS, json=body, idempotent=False) or {}

    def list_endpoints(self, project_id: str | None, *, limit: int = 50, max_pages: int = 20) -> dict[str, dict[str, Any]]:
        """``GET /dedicated/beta/endpoint?projectId=``: endpoint id -> status, every page."""
        result: dict[str, dict[str, Any]] = {}
        cursor = None
        for _ in range(max_pages):
            page = self.request("GET", ENDPOINTS, params={"projectId": project_id, "limit": limit, "cursor": cursor}) or {}
            data = page.get("data") or {}
            if isinstance(data, list):  # tolerate a list of objects carrying their id
                data = {str(item.get("endpointId") or item.get("id")): item for item in data}
            result.update(data)
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return result

    def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``GET /dedicated/beta/endpoint/{id}``: the endpoint's spec (name, replicas...)."""
        return self.request("GET", f"{ENDPOINTS}/{endpoint_id}") or {}

    def get_status(self, endpoint_id: str) -> dict[str, Any]:
        """``GET /dedicated/beta/endpoint/{id}/status``: status, phase, errorCode."""
        return self.request("GET", f"{ENDPOINTS}/{endpoint_id}/status") or {}

    def delete_endpoint(self, endpoint_id: str) -> Any:
        """``DELETE /dedicated/beta/endpoint/{id}``."""
        return self.request("DELETE", f"{ENDPOINTS}/{endpoint_id}")

    def sleep_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``PUT /dedicated/beta/endpoint/{id}/sleep``."""
        return self.request("PUT", f"{ENDPOINTS}/{endpoint_id}/sleep") or {}

    def wake_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``PUT /dedicated/beta/endpoint/{id}/wake``."""
        return self.request("PUT", f"{ENDPOINTS}/{endpoint_id}/wake") or {}

    # --- inference -----------------------------------------------------------------------

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dedicated/v1/chat/completions`` (``model`` is the endpoint id)."""
        return self.request("POST", "/dedicated/v1/chat/completions", json=body) or {}

    def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dedicated/v1/embeddings`` (``model`` is the endpoint id)."""
        return self.request("POST", "/dedicated/v1/embeddings", json=body) or {}
