"""The FriendliAI token and where it may be sent.

The token is a Personal API Key (Friendli Suite > Settings > API Keys), read only from
``FRIENDLI_TOKEN``. It must be printable ASCII without spaces: a key with a newline or
another control character is refused before any use, and the error names the position,
never the key. It is sent only over https, or over plain http to a loopback host (a local
proxy or test server); any other host than FriendliAI's own gets a warning, since it will
receive the key. :func:`redact` removes the key from text in every form it can be printed
in: as is, escaped by ``repr``/JSON/``unicode_escape`` and percent-encoded.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

import httpx

from mmship.core.errors import DeployError

DEFAULT_BASE_URL = "https://api.friendli.ai"
TOKEN_ENV = "FRIENDLI_TOKEN"
REDACTED = "***"
#: FriendliAI's own API hosts: the domain and its subdomains.
FRIENDLI_DOMAIN = "friendli.ai"

log = logging.getLogger("mmship.friendli")


def check_token(token: str, source: str = TOKEN_ENV) -> str:
    """``token`` if it is printable ASCII without spaces, else an error naming only the
    position of the first bad character (``source`` says which value it was)."""
    for position, char in enumerate(token):
        if not "!" <= char <= "~":
            kind = "a control character" if char < " " or char == "\x7f" else "a space or non-ASCII character"
            raise DeployError(
                f"{source} contains {kind} at position {position} (the value is not shown); it must be "
                "printable ASCII without spaces",
                hint=f"copy the Personal API Key again from Friendli Suite (Settings > API Keys) and set it with "
                f"`export {TOKEN_ENV}=flp_...`; check that no newline or quote came along"
                if "team" not in source else "set the team id exactly as Friendli Suite shows it",
            )
    return token


def read_token(env: Mapping[str, str] | None = None) -> str:
    """The Personal API Key from ``FRIENDLI_TOKEN``, or an error saying how to set it."""
    token = (env if env is not None else os.environ).get(TOKEN_ENV, "").strip()
    if not token:
        raise DeployError(
            f"no FriendliAI token: the environment variable {TOKEN_ENV} is not set",
            hint=f"create a Personal API Key in Friendli Suite (Settings > API Keys) and run "
            f"`export {TOKEN_ENV}=flp_...`; mmship never reads tokens from files or flags",
        )
    return check_token(token)


def secret_forms(secret: str) -> list[str]:
    """Every printed form of ``secret`` mmship can produce: raw, repr/JSON/unicode-escaped,
    percent-encoded; longest first so a longer form is replaced before its parts."""
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        repr(secret.encode("utf-8"))[2:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact(text: str, secret: str | None) -> str:
    """``text`` with every printed form of ``secret`` replaced by ``***``."""
    if not secret:
        return text
    for form in secret_forms(secret):
        text = text.replace(form, REDACTED)
    return text


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_friendli_host(host: str) -> bool:
    """``friendli.ai`` or one of its subdomains (``api.friendli.ai``)."""
    host = host.lower().rstrip(".")
    return host == FRIENDLI_DOMAIN or host.endswith("." + FRIENDLI_DOMAIN)


def base_url_problem(url: str) -> str | None:
    """Why the token must not be sent to ``url`` (None when it may). The message never
    repeats the value: a key pasted into the wrong setting must not be printed."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "base_url is not a URL"
    if parsed.scheme not in ("https", "http") or not parsed.host:
        return "base_url must be an https:// URL with a host"
    if parsed.userinfo:
        return "base_url must not carry a user name or password (the URL is printed in plans and errors)"
    if parsed.query or parsed.fragment:
        return "base_url must not have a query or fragment"
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        return (
            "base_url uses plain http to a host that is not loopback, which would send the FriendliAI token "
            "unencrypted; plain http is allowed only to 127.0.0.1, ::1 or localhost"
        )
    return None


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash, or an error when the token must not go there."""
    problem = base_url_problem(url)
    if problem is not None:
        raise DeployError(problem, hint=f"use https:// (the API is {DEFAULT_BASE_URL}), or http:// only to a loopback host")
    return url.rstrip("/")


def foreign_host(url: str) -> str | None:
    """The host of ``url`` when it is not FriendliAI's own (the token goes to it), else None."""
    host = httpx.URL(url).host
    return None if is_friendli_host(host) else host


def warn_if_foreign(url: str) -> None:
    """Log a warning when the token will be sent to a host other than FriendliAI's."""
    host = foreign_host(url)
    if host is not None:
        log.warning("the FriendliAI token will be sent to %s, which is not FriendliAI's API host (%s)", host, DEFAULT_BASE_URL)
