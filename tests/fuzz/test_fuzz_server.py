"""Property: any request to a running server answers 2xx or 4xx with a JSON body that
strict parsers read, within a time bound, never a 5xx or a hang; the server stays ready
and serves the next valid request.

One server (tiny CLIP, small limits so an example costs milliseconds) serves every example
of the module; after each one its readiness probe is asked, and every few examples a valid
request must still succeed."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given

from mmship.core.bundle import Bundle
from hypothesis import strategies as st

from tests.fuzz.strategies import classify_bodies, embed_bodies, openai_bodies, rank_bodies, v2_binary_bodies, v2_json_bodies
from tests.helpers.servers import running_server

pytestmark = [pytest.mark.fuzz, pytest.mark.network]

#: Longest a fuzzed request may take before the test calls it a hang.
REQUEST_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def served(tiny_clip_bundle):
    name = Bundle.load(tiny_clip_bundle).manifest.name
    with running_server(
        tiny_clip_bundle, precision="int8", max_body_bytes=1024 * 1024, max_items_per_request=16, max_queue_rows=64,
        max_image_pixels=2_000_000, max_request_pixels=4_000_000, max_request_text_chars=20_000, request_timeout_s=10,
    ) as url:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
            yield client, name


def _strict(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"bare {constant} in a response")
    return json.loads(text, parse_constant=refuse)


_calls = {"n": 0}


def answer_is_sound(client: httpx.Client, response: httpx.Response) -> None:
    """Status 2xx/4xx, a strict-JSON body (v2 binary answers: their JSON header), the server ready."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    length = response.headers.get("inference-header-content-length")
    _strict(response.content[: int(length)].decode() if length else response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        message = error["message"] if isinstance(error, dict) else error  # /v1: OpenAI's error object
        assert "Fix:" in message or response.status_code in (401, 404, 405, 413), response.text
    assert client.get("/v2/health/ready").status_code == 200
    _calls["n"] += 1
    if _calls["n"] % 25 == 0:
        assert client.post("/embed", json={"texts": ["a photo of a cat"]}).status_code == 200


@given(body=v2_json_bodies())
def test_v2_json(served, body):
    client, name = served
    answer_is_sound(client, client.post(f"/v2/models/{name}/infer", content=body, headers={"content-type": "application/json"}))


@given(request=v2_binary_bodies())
def test_v2_binary(served, request):
    client, name = served
    body, headers = request
    raw = [(key.encode(), value.encode("latin-1", "replace")) for key, value in headers.items()]
    answer_is_sound(client, client.post(f"/v2/models/{name}/infer", content=body, headers=raw))


@given(body=embed_bodies())
def test_embed(served, body):
    client, _ = served
    answer_is_sound(client, client.post("/embed", content=body, headers={"content-type": "application/json"}))


@given(body=classify_bodies())
def test_classify(served, body):
    client, _ = served
    answer_is_sound(client, client.post("/classify", content=body, headers={"content-type": "application/json"}))


@given(data=st.data())
def test_rank(served, data):
    client, name = served
    body = data.draw(rank_bodies(name))
    answer_is_sound(client, client.post("/rank", content=body, headers={"content-type": "application/json"}))


@given(data=st.data())
def test_openai_embeddings(served, data):
    client, name = served
    body = data.draw(openai_bodies(name))
    answer_is_sound(client, client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"}))


def test_the_server_serves_after_the_fuzzing(served):
    client, name = served
    assert client.get("/v2/health/ready").status_code == 200
    assert client.post("/embed", json={"texts": ["a photo of a cat"]}).status_code == 200
    metrics = client.get("/metrics").text
    assert 'status="500"' not in metrics, "some fuzzed request was answered 500"
