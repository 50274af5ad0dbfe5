"""The FriendliAI REST client: auth, bounded retries, Retry-After, timeouts, redaction."""

from __future__ import annotations

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
    assert request["query"]["projectId"] == "p1"


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


def test_create_is_not_retried_after_a_500(fake):
    fake.inject("POST", "/dedicated/beta/endpoint", 500, times=3)
    client, sleeps = client_for(fake)
    with client, pytest.raises(FriendliAPIError) as info:
        client.create_endpoint({"name": "x"})
    assert info.value.status == 500
    assert sleeps == [] and len(fake.requests) == 1


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
        with pytest.raises(FriendliAPIError, match="ReadTimeout"):
            client.create_endpoint({})
        assert calls == ["POST"]


def test_the_fake_api_answers_401_without_a_token(fake):
    response = httpx.get(f"{fake.url}/dedicated/beta/endpoint", timeout=5)
    assert response.status_code == 401 and "missing Authorization" in response.json()["detail"]
