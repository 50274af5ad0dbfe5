"""Fetching image URLs for a request: off unless the operator allows hosts, and then bounded.

``mmship serve --allow-url-fetch HOST_PATTERN`` turns it on. A fetch then:

* takes ``https`` only; ``http`` only when every address of the host is a loopback one
  (which itself needs ``--url-fetch-private``);
* goes only to hosts matching the allow-list (``images.example.com``, ``*.example.com``,
  an IP address), redirects included: each hop is checked again;
* resolves the host itself, refuses private, loopback, link-local and other non-public
  addresses unless ``--url-fetch-private`` is given (multicast and unspecified ones always),
  and connects to the very address it checked (TLS still verifies the host name), so a DNS
  answer that changes between check and connect (rebinding) is never used;
* streams the body and stops at ``max_bytes`` (one file) and at the request's budget (the
  server's body limit: fetched files count like bytes sent inline), and stops at
  ``timeout_s`` for the whole fetch, redirects included;
* sends no credentials, cookies or proxy settings from the environment;
* runs with httpx in its own threads, off the event loop.

Every refusal is a :class:`~mmship.core.errors.RequestFieldError` (400) naming the URL,
what was expected and the fix.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmship.core.errors import InputSpecError, RequestFieldError
from mmship.payload.images import check_encoded_image

#: Resolves a host and port to IP address strings (tests replace it to play DNS).
Resolver = Callable[[str, int], list[str]]
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HOST_PATTERN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_ENABLE_HINT = (
    "send the image itself as a data URI or base64, or ask the operator to start the server with "
    "--allow-url-fetch HOST for the hosts it may fetch from"
)


class UrlFetchSettings(BaseModel):
    """Whether and how the server fetches image URLs (``mmship serve --allow-url-fetch``)."""

    model_config = ConfigDict(extra="forbid")
    allow_hosts: list[str] = Field(default_factory=list, description="host patterns; empty: no fetching")
    allow_private: bool = Field(False, description="also fetch from private, loopback and link-local addresses")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest file fetched")
    timeout_s: float = Field(10.0, gt=0, description="whole fetch, redirects included")
    max_redirects: int = Field(3, ge=0)

    @field_validator("allow_hosts")
    @classmethod
    def _patterns(cls, hosts: list[str]) -> list[str]:
        checked = []
        for host in hosts:
            value = host.strip().lower().strip("[]")
            if _ip(value) is None and not _HOST_PATTERN.match(value):
                raise ValueError(
                    f"{host!r} is not a host pattern: write a host name (images.example.com), '*.' and a domain "
                    "(*.example.com) or an IP address"
                )
            checked.append(value)
        return checked

    @property
    def enabled(self) -> bool:
        """True when some host may be fetched from."""
        return bool(self.allow_hosts)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """True when ``host`` matches a pattern: the same name or address, or a subdomain of a
    ``*.`` pattern's domain (not the domain itself)."""
    host = host.lower().rstrip(".")
    address = _ip(host)
    for pattern in patterns:
        if pattern.startswith("*."):
            if address is None and host.endswith(pattern[1:]):
                return True
        elif address is not None and _ip(pattern) == address:
            return True
        elif host == pattern:
            return True
    return False


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


class _Budget:
    """Bytes a request may still fetch, shared by its concurrent fetches."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.total = total
        self._lock = threading.Lock()

    def take(self, size: int, url: str) -> None:
        with self._lock:
            self.left -= size
            if self.left < 0:
                raise _refuse(
                    url, f"the files fetched for this request pass its budget of {self.total} bytes",
                    "fetch fewer or smaller images per request",
                )


def _refuse(url: str, why: str, hint: str) -> RequestFieldError:
    shown = url if len(url) <= 200 else url[:200] + "..."
    return RequestFieldError(f"image URL {shown!r}: {why}", hint=hint, field="input", code="invalid_image_url")


def _image(data: bytes, url: str) -> bytes:
    """``data`` when it is an encoded image (the decoder checks it further)."""
    try:
        return check_encoded_image(data, "the file")
    except InputSpecError as exc:
        raise _refuse(url, exc.message, "link a JPEG, PNG or WebP file") from None


class UrlFetcher:
    """Fetches image files under :class:`UrlFetchSettings`."""

    def __init__(
        self, settings: UrlFetchSettings, *, resolver: Resolver = system_resolver, verify: Any = True, workers: int = 4
    ) -> None:
        """
        :param settings: the allow-list and limits.
        :param resolver: host name -> addresses (tests play DNS with it).
        :param verify: httpx's ``verify`` (an ``ssl.SSLContext`` trusting a test CA in tests).
        :param workers: fetches running at once.
        """
        self.settings = settings
        self.resolver = resolver
        self.verify = verify
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmship-fetch")

    def close(self) -> None:
        """Stop the fetch threads (fetches under way finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def fetch_all(self, urls: Sequence[str], budget_bytes: int) -> list[bytes]:
        """Fetch ``urls`` at once, off the event loop; the files together stay within
        ``budget_bytes``, each fetch within the timeout."""
        if not self.settings.enabled:
            raise _refuse(urls[0], "this server does not fetch URLs", _ENABLE_HINT)
        budget = _Budget(budget_bytes)
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self._pool, self.fetch, url, budget) for url in urls]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*jobs), self.settings.timeout_s + 1.0))
        except asyncio.TimeoutError:
            raise _refuse(urls[0], f"the fetch took longer than {self.settings.timeout_s:g} s", "use a faster host") from None

    def fetch(self, url: str, budget: _Budget | None = None) -> bytes:
        """The file at ``url`` (an encoded image), following allowed redirects."""
        deadline = time.monotonic() + self.settings.timeout_s
        budget = budget or _Budget(self.settings.max_bytes)
        current = url
        with httpx.Client(verify=self.verify, trust_env=False, follow_redirects=False) as client:
            for _ in range(self.settings.max_redirects + 1):
                target, host_header, host = self._pinned(current)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _refuse(url, f"the fetch took longer than {self.settings.timeout_s:g} s", "use a faster host")
                try:
                    location = self._get(client, target, host_header, host, current, deadline, budget, url)
                except httpx.TimeoutException:
                    raise _refuse(url, f"the fetch took longer than {self.settings.timeout_s:g} s", "use a faster host") from None
                except httpx.HTTPError as exc:
                    raise _refuse(url, f"the fetch failed ({type(exc).__name__}: {exc})", "check the URL") from None
                if isinstance(location, bytes):
                    return _image(location, url)
                current = urljoin(current, location)
        raise _refuse(url, f"more than {self.settings.max_redirects} redirects", "link the image's final address")

    def _pinned(self, url: str) -> tuple[str, str, str]:
        """``url`` checked, rewritten to the checked address: (target, Host header, host)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host:
            raise _refuse(url, "only http(s) URLs with a host are fetched", "send an https:// URL, or the image as a data URI")
        if parts.username or parts.password:
            raise _refuse(url, "URLs with credentials are not fetched", "use a URL without user:password@")
        if not host_allowed(host, self.settings.allow_hosts):
            raise _refuse(url, f"host {host!r} is not on this server's allow-list", "use an allowed host: " + ", ".join(self.settings.allow_hosts))
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            addresses = [a for a in (_ip(v) for v in self.resolver(host, port)) if a is not None]
        except (OSError, UnicodeError) as exc:
            raise _refuse(url, f"host {host!r} does not resolve ({exc})", "check the URL") from None
        if not addresses:
            raise _refuse(url, f"host {host!r} does not resolve", "check the URL")
        for address in addresses:
            self._check_address(url, host, address)
        if scheme == "http" and not all(a.is_loopback for a in addresses):
            raise _refuse(url, "plain http is fetched only from loopback hosts", "use https://")
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        return target, parts.netloc.rsplit("@", 1)[-1], host

    def _check_address(self, url: str, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        if address.is_multicast or address.is_unspecified:
            raise _refuse(url, f"host {host!r} resolves to {address}, which is never fetched from", "use another host")
        if not address.is_global and not self.settings.allow_private:
            raise _refuse(
                url, f"host {host!r} resolves to {address}, a private, loopback or link-local address",
                "use a public host, or start the server with --url-fetch-private if internal hosts are meant",
            )

    def _get(
        self, client: httpx.Client, target: str, host_header: str, host: str, shown: str, deadline: float,
        budget: _Budget, url: str,
    ) -> bytes | str:
        """One hop: the body, or the redirect's location."""
        timeout = max(0.01, deadline - time.monotonic())
        headers = {"host": host_header, "accept": "image/*", "accept-encoding": "identity", "user-agent": "mmship-url-fetch"}
        extensions = {"sni_hostname": host} if target.startswith("https") else {}
        with client.stream("GET", target, headers=headers, extensions=extensions, timeout=timeout) as response:
            if response.status_code in REDIRECTS and response.headers.get("location"):
                return response.headers["location"]
            if response.status_code != 200:
                raise _refuse(url, f"{shown!r} answered HTTP {response.status_code}", "check the URL")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise _refuse(url, f"the file came {encoding}-encoded; only plain files are fetched", "serve the image uncompressed")
            declared = response.headers.get("content-length")
            limit = self.settings.max_bytes
            if declared and declared.isdigit() and int(declared) > limit:
                raise _refuse(url, f"the file is {declared} bytes, over the limit of {limit}", "send a smaller image")
            chunks, size = [], 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > limit:
                    raise _refuse(url, f"the file is over the limit of {limit} bytes", "send a smaller image")
                budget.take(len(chunk), url)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _refuse(url, f"the fetch took longer than {self.settings.timeout_s:g} s", "use a faster host")
            return b"".join(chunks)
