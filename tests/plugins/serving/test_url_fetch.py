"""Image URL fetching: off by default; when allowed, every limit holds against a loopback
HTTP(S) server that misbehaves (too big, slow, redirecting to a forbidden host, compressed,
not an image), names resolved once and connected to as checked (DNS rebinding), TLS
verified against the host name, and the server stays ready after each refusal."""

from __future__ import annotations

import base64
import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files

import httpx
import numpy as np
import pytest

from mmship.core.errors import RequestFieldError
from mmship.serving.url_fetch import UrlFetcher, UrlFetchSettings, host_allowed
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

CAT = files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()
CAP = 100_000


class Misbehaving(BaseHTTPRequestHandler):
    """Routes that a hostile or broken image host might answer with."""

    hosts_seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"content-length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Misbehaving.hosts_seen.append(self.headers.get("host", ""))
        path = self.path
        if path == "/cat.jpg":
            self._send(200, CAT, {"content-type": "image/jpeg"})
        elif path == "/declared-big":
            self._send(200, b"\xff\xd8\xff" + b"0" * (CAP + 10))
        elif path == "/streamed-big":
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(1000):
                    self.wfile.write(b"2000\r\n" + b"0" * 0x2000 + b"\r\n")
        elif path == "/slow":
            self.send_response(200)
            self.send_header("content-length", str(len(CAT)))
            self.end_headers()
            with contextlib.suppress(OSError):
                for byte in CAT[:50]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
        elif path == "/to-forbidden":
            self._send(302, headers={"location": "http://forbidden.example/cat.jpg"})
        elif path == "/to-cat":
            self._send(302, headers={"location": "/cat.jpg"})
        elif path == "/loop":
            self._send(302, headers={"location": "/loop"})
        elif path == "/gzip":
            self._send(200, b"\x1f\x8b" + b"0" * 50, {"content-encoding": "gzip"})
        elif path == "/text":
            self._send(200, b"<html>not an image</html>", {"content-type": "text/html"})
        else:
            self._send(404, b"no")


@contextlib.contextmanager
def misbehaving_server(context: ssl.SSLContext | None = None) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with misbehaving_server() as port:
        yield port


def fetcher(**settings: object) -> UrlFetcher:
    values = {"allow_hosts": ["127.0.0.1"], "allow_private": True, "max_bytes": CAP, "timeout_s": 1.0, **settings}
    return UrlFetcher(UrlFetchSettings(**values))


def refused(fetch: UrlFetcher, url: str, *words: str) -> RequestFieldError:
    with pytest.raises(RequestFieldError) as info:
        fetch.fetch(url)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert info.value.status == 400 and info.value.field == "input"
    return info.value


def test_a_good_fetch_and_an_allowed_redirect(port):
    assert fetcher().fetch(f"http://127.0.0.1:{port}/cat.jpg") == CAT
    assert fetcher().fetch(f"http://127.0.0.1:{port}/to-cat") == CAT


def test_each_limit_holds(port):
    base = f"http://127.0.0.1:{port}"
    refused(fetcher(), f"{base}/declared-big", f"over the limit of {CAP}")
    started = time.monotonic()
    refused(fetcher(), f"{base}/streamed-big", f"over the limit of {CAP} bytes")
    refused(fetcher(timeout_s=1.0), f"{base}/slow", "longer than 1 s")
    assert time.monotonic() - started < 4, "the slow host was cut at the timeout"
    refused(fetcher(), f"{base}/to-forbidden", "host 'forbidden.example' is not on this server's allow-list")
    refused(fetcher(max_redirects=2), f"{base}/loop", "more than 2 redirects")
    refused(fetcher(), f"{base}/gzip", "gzip-encoded")
    refused(fetcher(), f"{base}/text", "not an encoded image")
    refused(fetcher(), f"{base}/missing", "answered HTTP 404")


def test_the_request_budget_counts_every_file(port):
    import asyncio

    url = f"http://127.0.0.1:{port}/cat.jpg"
    assert asyncio.run(fetcher().fetch_all([url, url], 2 * len(CAT))) == [CAT, CAT]
    with pytest.raises(RequestFieldError, match="budget of"):
        asyncio.run(fetcher().fetch_all([url, url, url], 2 * len(CAT)))


def test_off_by_default_and_allow_list_first(port):
    import asyncio

    with pytest.raises(RequestFieldError, match="does not fetch URLs") as info:
        asyncio.run(UrlFetcher(UrlFetchSettings()).fetch_all([f"http://127.0.0.1:{port}/cat.jpg"], 10**6))
    assert "--allow-url-fetch" in info.value.hint
    calls = []
    fetch = UrlFetcher(UrlFetchSettings(allow_hosts=["images.example.com"]), resolver=lambda h, p: calls.append(h) or ["93.184.216.34"])
    refused(fetch, "https://evil.example.com/cat.jpg", "not on this server's allow-list")
    refused(fetch, "https://user:pw@images.example.com/cat.jpg", "credentials")
    refused(fetch, "ftp://images.example.com/cat.jpg", "only http(s)")
    refused(fetch, "http://images.example.com/cat.jpg", "plain http is fetched only from loopback")
    assert calls == ["images.example.com"], "nothing is resolved for a host off the list"


@pytest.mark.parametrize(
    ("addresses", "words"),
    [
        (["127.0.0.1"], "loopback"),
        (["10.1.2.3"], "private"),
        (["169.254.169.254"], "link-local"),
        (["93.184.216.34", "192.168.0.7"], "192.168.0.7"),
        (["::ffff:127.0.0.1"], "127.0.0.1"),
        (["fe80::1"], "link-local"),
    ],
)
def test_names_resolving_to_internal_addresses_are_refused(addresses, words):
    """The resolved address is checked (a public name pointed at an internal address: DNS rebinding)."""
    fetch = UrlFetcher(UrlFetchSettings(allow_hosts=["*.example.com"]), resolver=lambda host, port: addresses)
    refused(fetch, "https://images.example.com/cat.jpg", words, "--url-fetch-private")


def test_multicast_is_refused_even_when_private_is_allowed():
    fetch = UrlFetcher(UrlFetchSettings(allow_hosts=["m.example.com"], allow_private=True), resolver=lambda h, p: ["224.0.0.1"])
    refused(fetch, "https://m.example.com/x.jpg", "never fetched from")


def test_the_checked_address_is_the_one_connected_to(port):
    """One resolution per hop; the connection goes to that address with the name as Host."""
    calls: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.1"]  # a rebinding DNS answer

    fetch = UrlFetcher(UrlFetchSettings(allow_hosts=["images.test"], allow_private=True, max_bytes=CAP), resolver=resolver)
    Misbehaving.hosts_seen.clear()
    assert fetch.fetch(f"http://images.test:{port}/cat.jpg") == CAT
    assert calls == ["images.test"] and Misbehaving.hosts_seen == [f"images.test:{port}"]


def test_https_is_verified_against_the_host_name():
    import trustme

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("images.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    settings = UrlFetchSettings(allow_hosts=["images.test", "other.test"], allow_private=True, max_bytes=CAP)
    with misbehaving_server(server_context) as tls_port:
        fetch = UrlFetcher(settings, resolver=lambda h, p: ["127.0.0.1"], verify=client_context)
        assert fetch.fetch(f"https://images.test:{tls_port}/cat.jpg") == CAT
        refused(fetch, f"https://other.test:{tls_port}/cat.jpg", "the fetch failed", "certificate")


def test_host_patterns():
    assert host_allowed("a.example.com", ["*.example.com"]) and host_allowed("b.a.example.com", ["*.example.com"])
    assert not host_allowed("example.com", ["*.example.com"]) and not host_allowed("badexample.com", ["*.example.com"])
    assert host_allowed("IMAGES.example.com.", ["images.example.com"])
    assert host_allowed("::1", ["::1"]) and not host_allowed("127.0.0.2", ["127.0.0.1"])
    for bad in ("*", "http://x.com", "a/b", "*.*.com", "exa mple.com"):
        with pytest.raises(ValueError, match="not a host pattern"):
            UrlFetchSettings(allow_hosts=[bad])


def test_through_the_server_every_refusal_fails_only_itself(tiny_clip_bundle, port):
    settings = UrlFetchSettings(allow_hosts=["127.0.0.1"], allow_private=True, max_bytes=CAP, timeout_s=1.0)
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=5, url_fetch=settings) as url:
        def embed(image: str) -> httpx.Response:
            return httpx.post(f"{url}/v1/embeddings", json={"input": [image], "modality": "image", "encoding_format": "float"}, timeout=30)

        fetched = embed(f"http://127.0.0.1:{port}/cat.jpg")
        inline = embed("data:image/jpeg;base64," + base64.b64encode(CAT).decode())
        assert fetched.status_code == 200, fetched.text
        np.testing.assert_array_equal(fetched.json()["data"][0]["embedding"], inline.json()["data"][0]["embedding"])
        for path, words in [("/slow", "longer than 1 s"), ("/streamed-big", "over the limit"), ("/to-forbidden", "allow-list")]:
            started = time.monotonic()
            answer = embed(f"http://127.0.0.1:{port}{path}")
            assert answer.status_code == 400 and words in answer.json()["error"]["message"], answer.text
            assert time.monotonic() - started < 5
            assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        assert embed(f"http://127.0.0.1:{port}/cat.jpg").status_code == 200
