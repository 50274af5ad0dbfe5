"""The Python client against the stub server: retries, auth, errors, every call."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import numpy as np
import pytest
from PIL import Image

from mmship.client import Client, ServerError, error_from_response, retry_after_seconds
from mmship.core.errors import InputSpecError, MmshipError
from tests.helpers.stub_server import MODEL, embed_images, embed_texts

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def cat() -> bytes:
    from importlib.resources import files

    return files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_503_with_retry_after_is_retried_once_then_succeeds(stub):
    url, state = stub
    state.script.append((503, {"Retry-After": "0.1"}, {"error": "queue full"}))
    with Client(url) as client:
        start = time.perf_counter()
        result = client.embed(texts=["a photo of a cat"])
        elapsed = time.perf_counter() - start
    assert result.text_embeds.shape == (1, 8)
    assert 0.1 <= elapsed < 2.0
    assert [path for _, path, _ in state.seen] == ["/embed", "/embed"]


def test_429_is_retried_too(stub):
    url, state = stub
    state.script.append((429, {"Retry-After": "0"}, {"error": "slow down"}))
    with Client(url) as client:
        assert client.embed(texts=["x"]).dim == 8
    assert len(state.seen) == 2


def test_retries_are_bounded_and_the_last_answer_raises(stub):
    url, state = stub
    state.script.extend([(503, {"Retry-After": "0"}, {"error": "queue full. Fix: retry later"})] * 5)
    with Client(url, retries=2) as client, pytest.raises(ServerError) as info:
        client.embed(texts=["x"])
    assert info.value.status == 503
    assert info.value.message == "the server answered 503: queue full" and info.value.hint == "retry later"
    assert len(state.seen) == 3


def test_retry_after_is_capped(stub):
    url, state = stub
    state.script.append((503, {"Retry-After": "3600"}, {"error": "busy"}))
    with Client(url, max_retry_wait=0.05) as client:
        start = time.perf_counter()
        client.embed(texts=["x"])
    assert time.perf_counter() - start < 1.0


def test_other_errors_are_not_retried_and_carry_the_servers_message(stub):
    url, state = stub
    with Client(url) as client, pytest.raises(ServerError) as info:
        client.request("POST", f"/v2/models/{MODEL}/infer", b'{"inputs": []}', {"content-type": "application/json"})
    assert info.value.status == 400
    assert "the 'inputs' list is empty" in info.value.message and '"inputs"' in info.value.hint
    assert len(state.seen) == 1


def test_unknown_model_is_a_404_with_the_fix(stub):
    url, _ = stub
    with Client(url, model="nope") as client, pytest.raises(ServerError) as info:
        client.infer(texts=["x"])
    assert info.value.status == 404 and "no model 'nope' here" in info.value.message
    assert info.value.hint == f"use /v2/models/{MODEL}"


def test_connection_errors_are_retried_then_reported():
    with socket_free_port() as port, Client(f"http://127.0.0.1:{port}", retries=1, timeout=2) as client:
        start = time.perf_counter()
        with pytest.raises(MmshipError, match="cannot reach") as info:
            client.health()
    assert time.perf_counter() - start < 5
    assert "mmship serve" in info.value.hint


def test_connection_error_then_success_with_a_mock_transport():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"name": "mmship", "version": "x", "extensions": []})

    with Client("http://mmship.test", transport=httpx.MockTransport(handler)) as client:
        assert client.server_metadata()["name"] == "mmship"
    assert calls == ["/v2", "/v2"]


def test_bearer_api_key(stub):
    url, state = stub
    state.api_key = "s3cret"
    with Client(url) as client, pytest.raises(ServerError) as info:
        client.embed(texts=["x"])
    assert info.value.status == 401 and "Authorization: Bearer" in info.value.hint
    with Client(url, api_key="s3cret") as client:
        assert client.embed(texts=["x"]).dim == 8
    assert state.seen[-1][2]["authorization"] == "Bearer s3cret"


def test_embed_accepts_paths_bytes_pil_and_arrays(stub, cat, tmp_path):
    url, state = stub
    path = tmp_path / "cat.jpg"
    path.write_bytes(cat)
    pil = Image.new("RGB", (6, 4), (200, 10, 10))
    array = np.zeros((4, 6, 3), np.uint8)
    with Client(url) as client:
        result = client.embed(images=[path, str(path), cat, pil, array], texts=["a cat", "a dog"])
        single = client.embed(images=str(path))
    assert result.image_embeds.shape == (5, 8) and result.text_embeds.shape == (2, 8)
    np.testing.assert_allclose(result.image_embeds[0], unit(embed_images([cat]))[0], rtol=1e-6)
    np.testing.assert_allclose(result.image_embeds[0], result.image_embeds[2])
    np.testing.assert_allclose(np.linalg.norm(result.image_embeds, axis=1), 1.0, rtol=1e-5)
    assert single.image_embeds.shape == (1, 8)


def test_embed_without_normalize(stub):
    url, _ = stub
    with Client(url) as client:
        raw = client.embed(texts=["a cat"], normalize=False)
    np.testing.assert_allclose(raw.text_embeds, embed_texts(["a cat"]), rtol=1e-6)


def test_raw_pixels_never_leave_the_client(stub):
    url, state = stub
    with Client(url) as client:
        with pytest.raises(InputSpecError, match="not an encoded image"):
            client.embed(images=[np.zeros((224, 224, 3), np.uint8).tobytes()])
        with pytest.raises(InputSpecError, match="channels-first"):
            client.infer(images=[np.zeros((3, 224, 224), np.uint8)], protocol="embed")
    assert state.seen == []


def test_classify(stub, cat):
    url, _ = stub
    with Client(url) as client:
        result = client.classify(cat, "cat, dog, car")
    assert result.labels == ["cat", "dog", "car"]
    assert abs(sum(result.probs) - 1) < 1e-6 and result.top == result.ranked()[0][0]


@pytest.mark.parametrize("protocol", ["v2", "v2-binary"])
def test_infer_v2(stub, cat, protocol):
    url, state = stub
    with Client(url, model=MODEL) as client:
        outputs = client.infer(images=[cat], texts=["a cat", "a dog"], protocol=protocol)
    assert set(outputs) == {"image_embeds", "text_embeds", "logits_per_image"}
    np.testing.assert_array_equal(outputs["image_embeds"], embed_images([cat]))
    assert outputs["logits_per_image"].shape == (1, 2)
    sent = state.seen[-1][2]
    assert ("inference-header-content-length" in sent) == (protocol == "v2-binary")


def test_infer_selected_outputs_and_embed_protocol(stub, cat):
    url, _ = stub
    with Client(url, model=MODEL) as client:
        only = client.infer(images=[cat], texts=["a cat"], protocol="v2-binary", outputs=["text_embeds"])
        embed = client.infer(images=[cat], texts=["a cat"], protocol="embed")
    assert set(only) == {"text_embeds"}
    np.testing.assert_allclose(embed["text_embeds"], unit(only["text_embeds"]), rtol=1e-6)


def test_model_name_is_learned_from_the_server_or_asked_for(stub):
    url, state = stub
    with Client(url) as client, pytest.raises(MmshipError, match="does not say which model it serves") as info:
        client.infer(texts=["x"])
    assert "--model" in info.value.hint
    state.advertise_model = True
    with Client(url) as client:
        assert client.model_name() == MODEL
        assert client.metadata()["name"] == MODEL


def test_health_and_metadata(stub):
    url, _ = stub
    with Client(url, model=MODEL) as client:
        health = client.health()
        assert health.live and health.ready
        assert client.server_metadata()["extensions"] == ["binary_tensor_data"]
        assert [i["name"] for i in client.metadata()["inputs"]] == ["image", "text"]


def test_unknown_protocol_and_bad_url(stub):
    url, _ = stub
    with Client(url, model=MODEL) as client, pytest.raises(MmshipError, match="no payload plugin encodes protocol 'grpc'"):
        client.infer(texts=["x"], protocol="grpc")
    with pytest.raises(MmshipError, match="not an http"):
        Client("127.0.0.1:8000")


def test_retry_after_parsing():
    assert retry_after_seconds("0.1", 10) == 0.1
    assert retry_after_seconds("120", 10) == 10
    assert retry_after_seconds("-3", 10) == 0
    assert retry_after_seconds(None, 10) is None and retry_after_seconds("soon", 10) is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=5), usegmt=True)
    assert 3 < retry_after_seconds(later, 10) <= 5


def test_error_from_response_without_json():
    error = error_from_response(httpx.Response(502, text="Bad Gateway from the proxy"))
    assert error.status == 502 and error.message == "the server answered 502: Bad Gateway from the proxy"


class socket_free_port:
    """A port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None
