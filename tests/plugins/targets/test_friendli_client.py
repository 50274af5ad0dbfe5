"""The FriendliAI REST client: auth, bounded retries, Retry-After, timeouts, redaction,
path safety, where the token may go, and what an error keeps."""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.client import (
    FriendliAPIError,
    FriendliClient,
    read_token,
)

pytestmark = pytest.mark.network


def client_for(fake, token=None, **kwargs):
    sleeps: list[float] = []
    kwargs.setdefault("sleep", sleeps.append)
    client = FriendliClient(token or fake.token, fake.url, timeout_s=5, **kwargs)
    return client, sleeps


def test_missing_token_names_the_variable_and_the_fix():
    with pytest.raises(DeployError) as info:
        read_token({})
    assert "FRIENDLI_TOKEN" in info.value.message
    assert "export FRIENDLI_TOKEN" in info.value.hint


def test_list_get_status_round_trip(fake):
    endpoint_id = fake.add_endpoint("p1", "chat", status="RUNNING")
    client, _ = client_for(fake)
    with client:
        assert set(client.list_endpoints("p1")) == {endpoint_id}
        assert client.get_endpoint(endpoint_id)["name"] == "chat"
        assert client.get_status(endpoint_id)["status"] == "RUNNING"
    request = fake.requests[0]
    assert request["headers"]["authorization"] == f"Bearer {fake.token}"
    assert request["query"] == {"project_id": "p1", "limit": "50"}


def test_list_follows_pagination(fake):
    ids = {fake.add_endpoint("p1", f"e{i}") for i in range(5)}
    client, _ = client_for(fake)
    with client:
        assert set(client.list_endpoints("p1", limit=2)) == ids
    assert len([r for r in fake.requests if r["path"] == "/dedicated/beta/endpoint"]) == 3


def test_team_header_is_sent(fake):
    client, _ = client_for(fake, team="team-42")
    with client:
        client.list_endpoints(None)
    assert fake.requests[-1]["headers"]["x-friendli-team"] == "team-42"


def test_retries_503_then_succeeds_honouring_retry_after(fake):
    fake.inject("GET", "/dedicated/beta/endpoint", 503, times=2, retry_after="2")
    client, sleeps = client_for(fake)
    with client:
        assert client.list_endpoints("p1") == {}
    assert sleeps == [2.0, 2.0]
    assert len(fake.requests) == 3


def test_429_backoff_without_retry_after_is_exponential(fake):
    fake.inject("GET", "/dedicated/beta/endpoint", 429, times=2)
    client, sleeps = client_for(fake, backoff_s=0.25)
    with client:
        client.list_endpoints("p1")
    assert sleeps == [0.25, 0.5]


def test_retry_after_is_capped(fake):
    fake.inject("GET", "/dedicated/beta/endpoint", 429, retry_after="3600")
    client, sleeps = client_for(fake, max_wait_s=5)
    with client:
        client.list_endpoints("p1")
    assert sleeps == [5.0]


def test_retries_are_bounded(fake):
    fake.inject("GET", "/dedicated/beta/endpoint", 503, times=10)
    client, sleeps = client_for(fake, retries=2)
    with client, pytest.raises(FriendliAPIError) as info:
        client.list_endpoints("p1")
    assert info.value.status == 503
    assert len(sleeps) == 2 and len(fake.requests) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_is_not_retried_after_a_5xx_and_says_the_outcome_is_unknown(fake, status):
    fake.inject("POST", "/dedicated/beta/endpoint", status, times=3)
    client, sleeps = client_for(fake)
    with client, pytest.raises(FriendliAPIError) as info:
        client.create_endpoint({"name": "x"})
    assert info.value.status == status and info.value.outcome_unknown
    assert sleeps == [] and len(fake.requests) == 1


def test_a_4xx_is_a_known_outcome(fake):
    client, _ = client_for(fake)
    with client, pytest.raises(FriendliAPIError) as info:
        client.get_status("nope")
    assert info.value.status == 404 and not info.value.outcome_unknown


def test_wrong_token_is_401_and_redacted(fake):
    secret = "flp_WRONG_but_still_secret_987"
    client, _ = client_for(fake, token=secret)
    with client, pytest.raises(FriendliAPIError) as info:
        client.list_endpoints("p1")
    assert info.value.status == 401
    assert secret not in str(info.value)
    assert "invalid token ***" in info.value.message
    assert "FRIENDLI_TOKEN" in info.value.hint
    assert secret not in repr(client)


def test_unknown_id_is_404(fake):
    client, _ = client_for(fake)
    with client, pytest.raises(FriendliAPIError) as info:
        client.get_status("nope")
    assert info.value.status == 404
    assert "not found" in info.value.message


def test_bad_body_is_422_with_field_names(fake):
    client, _ = client_for(fake)
    with client, pytest.raises(FriendliAPIError) as info:
        client.create_endpoint({"name": "x"})
    assert info.value.status == 422
    assert "body.projectId: Field required" in info.value.message
    assert fake.take_violations()  # sent on purpose


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    sleeps: list[float] = []
    client = FriendliClient("tok", f"http://127.0.0.1:{port}", timeout_s=2, retries=2, sleep=sleeps.append)
    with client, pytest.raises(FriendliAPIError) as info:
        client.list_endpoints("p1")
    assert "ConnectError" in info.value.message
    assert len(sleeps) == 2


def test_read_timeouts_are_retried_for_reads_but_not_for_create():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("timed out", request=request)

    client = FriendliClient("tok", "http://127.0.0.1:9", transport=httpx.MockTransport(handler), retries=2, sleep=lambda s: None)
    with client:
        with pytest.raises(FriendliAPIError, match="ReadTimeout"):
            client.get_status("e1")
        assert calls == ["GET"] * 3
        calls.clear()
        with pytest.raises(FriendliAPIError, match="ReadTimeout") as info:
            client.create_endpoint({})
        assert calls == ["POST"] and info.value.outcome_unknown


@pytest.mark.parametrize("fault", ["read-timeout", 500, 502, 503, 504])
def test_billed_inference_is_sent_once(fault):
    """A chat completion or an embedding is billed: a timeout or 5xx after sending is reported, not re-sent."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if fault == "read-timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(fault, json={"detail": "boom"})

    client = FriendliClient("tok", "http://127.0.0.1:9", transport=httpx.MockTransport(handler), retries=3, sleep=lambda s: None)
    with client:
        for send in (lambda: client.chat_completions({"model": "e", "messages": []}),
                     lambda: client.embeddings({"model": "e", "input": "x"})):
            calls.clear()
            with pytest.raises(FriendliAPIError) as info:
                send()
            assert len(calls) == 1 and info.value.outcome_unknown


def test_billed_inference_is_retried_on_429_only_and_connect_errors():
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}), None, httpx.Response(200, json={"choices": []})])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer is None:
            raise httpx.ConnectError("refused", request=request)  # never left this machine
        return answer

    client = FriendliClient("tok", "http://127.0.0.1:9", transport=httpx.MockTransport(handler), retries=3, sleep=lambda s: None)
    with client:
        assert client.chat_completions({"model": "e", "messages": []}) == {"choices": []}


def test_the_fake_api_answers_401_without_a_token(fake):
    response = httpx.get(f"{fake.url}/dedicated/beta/endpoint", timeout=5)
    assert response.status_code == 401 and "missing Authorization" in response.json()["detail"]
    assert fake.take_violations()  # the spec requires the bearer token: sent without on purpose


# --- endpoint ids stay one path segment ---------------------------------------------------


@pytest.mark.parametrize("endpoint_id, raw", [
    ("a/../b", b"/dedicated/beta/endpoint/a%2F..%2Fb/status"),
    ("x?y", b"/dedicated/beta/endpoint/x%3Fy/status"),
    ("x#y", b"/dedicated/beta/endpoint/x%23y/status"),
    ("..", b"/dedicated/beta/endpoint/%2E%2E/status"),
    (".", b"/dedicated/beta/endpoint/%2E/status"),
    ("ep 1", b"/dedicated/beta/endpoint/ep%201/status"),
])
def test_ids_are_percent_encoded_into_one_segment(endpoint_id, raw):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(200, json={"status": "RUNNING"})

    with FriendliClient("tok", "http://127.0.0.1:9", transport=httpx.MockTransport(handler)) as client:
        client.get_status(endpoint_id)
    assert seen == [raw]


def test_a_dot_dot_id_cannot_delete_another_endpoint(fake):
    victim = fake.add_endpoint("p1", "victim")
    client, _ = client_for(fake)
    with client, pytest.raises(FriendliAPIError) as info:
        client.delete_endpoint(f"nothing/../{victim}")
    assert info.value.status == 404
    assert fake.endpoints[victim]["status"] == "RUNNING"


# --- the token: where it may go, and what keeps it -----------------------------------------


@pytest.mark.parametrize("url", [
    "http://api.friendli.ai", "http://10.0.0.8:8000", "ftp://api.friendli.ai", "https://user:pw@api.friendli.ai",
    "https://api.friendli.ai?x=1", "not a url",
])
def test_the_token_is_not_sent_to_an_unsafe_base_url(url):
    with pytest.raises(DeployError) as info:
        FriendliClient("flp_secret_value", url)
    assert "flp_secret_value" not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:9", "https://api.friendli.ai/"])
def test_loopback_and_friendli_hosts_are_allowed(url, caplog):
    caplog.set_level(logging.WARNING)
    with FriendliClient("tok", url) as client:
        assert client.base_url == url.rstrip("/")
    warned = "not FriendliAI's API host" in caplog.text
    assert warned == ("friendli.ai" not in url)


def test_another_https_host_is_allowed_with_a_warning(caplog):
    caplog.set_level(logging.WARNING)
    with FriendliClient("tok", "https://proxy.example.com"):
        pass
    assert "proxy.example.com, which is not FriendliAI's API host" in caplog.text


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_a_transport_error_keeps_no_request(error):
    """The httpx exception holds the request and its Authorization header: it must not ride along."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error("failed", request=request)

    client = FriendliClient("flp_kept_secret", "http://127.0.0.1:9", transport=httpx.MockTransport(handler), retries=0)
    with client, pytest.raises(FriendliAPIError) as info:
        client.get_status("e1")
    chain = _chain(info.value)
    assert len(chain) == 1, chain
    assert not any(isinstance(e, httpx.HTTPError) for e in chain)


@pytest.mark.parametrize("token", ["flp_Qz7\nWv9", "flp_Qz7\r\nX-Evil: Wv9", "flp_Qz7\tWv9", "flp_Qz7\x00Wv9",
                                   "flp_Qz7\x7fWv9", "flp_Qz7\u00e9Wv9", "flp_Qz7 Wv9"])
def test_a_token_with_control_characters_is_refused_without_showing_it(token):
    from mmship.plugins.targets.friendli.auth import secret_forms

    for attempt in (lambda: read_token({"FRIENDLI_TOKEN": token}), lambda: FriendliClient(token)):
        with pytest.raises(DeployError) as info:
            attempt()
        text = str(info.value) + repr(info.value)
        assert "position 7" in info.value.message
        for part in [*secret_forms(token), "Qz7", "Wv9"]:
            assert part not in text


def test_a_token_with_a_newline_never_reaches_the_wire_or_the_output(fake):
    """Through the real transport: the header is never built, and nothing prints the key."""
    from mmship.plugins.targets.friendli.auth import secret_forms

    token = "flp_line_one\nline_two"
    with pytest.raises(DeployError) as info:
        with FriendliClient(token, fake.url) as client:
            client.list_endpoints("p1")
    assert fake.requests == []
    for form in secret_forms(token) + ["flp_line_one", "line_two"]:
        assert form not in str(info.value)


def test_redact_removes_every_printed_form():
    from mmship.plugins.targets.friendli.auth import redact

    secret = "flp_a\nb\tc\x00d\u00e9\"q'"
    texts = [secret, repr(secret), json.dumps(secret), json.dumps(secret, ensure_ascii=False), repr(secret.encode()),
             secret.encode("unicode_escape").decode(), f"Illegal header value {('Bearer ' + secret).encode()!r}"]
    for text in texts:
        cleaned = redact(f"before {text} after", secret)
        assert "flp_a" not in cleaned, (text, cleaned)
        assert "***" in cleaned
