"""Bodies built to break the decoders answer 4xx with expected / got / fix, never a 500,
and the server stays ready: absurd shapes, JSON nested 100000 deep, bare NaN/Infinity,
streamed bodies over the limit, raw tensors with more rows than a request may hold."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from mmship.core.bundle import Bundle
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="int8", max_body_bytes=2 * 1024 * 1024, max_items_per_request=16) as url:
        yield url


@pytest.fixture(scope="module")
def model(tiny_clip_bundle):
    return Bundle.load(tiny_clip_bundle).manifest.name


@pytest.fixture(scope="module")
def size(tiny_clip_bundle):
    return Bundle.load(tiny_clip_bundle).manifest.preprocess.image.output_size[0]


def strict_json(text: str):
    """JSON as every other parser reads it: a bare NaN or Infinity is an error."""
    def refuse(name):
        raise ValueError(f"bare {name} in the response")
    return json.loads(text, parse_constant=refuse)


def still_serving(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert httpx.post(f"{url}/embed", json={"texts": ["still fine"]}).status_code == 200


def test_a_70_dimension_shape_is_a_400(server, model):
    entry = {"name": "input_ids", "datatype": "INT64", "shape": [1] * 70, "data": [1]}
    response = httpx.post(f"{server}/v2/models/{model}/infer", json={"inputs": [entry]})
    assert response.status_code == 400, response.text
    assert "70 dimensions" in response.json()["error"] and "at most 16" in response.json()["error"]
    still_serving(server)


@pytest.mark.parametrize("route", ["v2", "/embed", "/classify"])
def test_json_nested_100000_deep_is_a_400(server, model, route):
    path = f"/v2/models/{model}/infer" if route == "v2" else route
    body = b"[" * 100_000 + b"]" * 100_000
    response = httpx.post(f"{server}{path}", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]
    still_serving(server)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_bare_nan_and_infinity_are_refused_never_echoed(server, model, size, constant):
    values = ",".join([constant] + ["0.5"] * (3 * size * size - 1))
    body = f'{{"inputs":[{{"name":"pixel_values","datatype":"FP32","shape":[1,3,{size},{size}],"data":[{values}]}}]}}'
    response = httpx.post(f"{server}/v2/models/{model}/infer", content=body.encode(), headers=JSON)
    assert response.status_code == 400, response.text[:300]
    assert f"bare {constant}" in strict_json(response.text)["error"]
    embed = httpx.post(f"{server}/embed", content=f'{{"texts": ["a"], "normalize": {constant}}}'.encode(), headers=JSON)
    assert embed.status_code == 400 and "does not allow" in strict_json(embed.text)["error"]
    still_serving(server)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_binary_pixels_are_a_400_and_every_answer_is_valid_json(server, model, size, value):
    pixels = np.zeros((1, 3, size, size), dtype=np.float32)
    pixels[0, 1, 2, 3] = value
    head = json.dumps({"inputs": [{"name": "pixel_values", "datatype": "FP32", "shape": list(pixels.shape),
                                   "parameters": {"binary_data_size": pixels.nbytes}}]}).encode()
    response = httpx.post(
        f"{server}/v2/models/{model}/infer", content=head + pixels.tobytes(),
        headers={"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))},
    )
    assert response.status_code == 400, response.text[:300]
    assert "1 NaN or infinite values" in strict_json(response.text)["error"]
    still_serving(server)


def test_json_outputs_never_carry_nan():
    """Should a model ever produce NaN, the JSON answer says so instead of writing invalid JSON."""
    from mmship.core.errors import InputSpecError
    from mmship.plugins.codecs.v2 import encode_v2_response

    outputs = {"image_embeds": np.array([[0.5, np.nan]], dtype=np.float32)}
    with pytest.raises(InputSpecError, match="NaN or infinite"):
        encode_v2_response("m", "1", None, outputs, False)
    body, headers = encode_v2_response("m", "1", None, outputs, True)  # binary carries any float
    assert headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("route", ["v2", "/embed", "/classify"])
def test_a_streamed_body_over_the_limit_is_a_413(server, model, route):
    path = f"/v2/models/{model}/infer" if route == "v2" else route
    chunks = iter([b'{"texts": ["'] + [b"a" * (512 * 1024)] * 6 + [b'"]}'])  # no content-length: chunked
    response = httpx.post(f"{server}{path}", content=chunks, headers=JSON)
    assert response.status_code == 413, response.text
    assert "over the limit" in response.json()["error"]
    still_serving(server)


@pytest.mark.parametrize("name", ["input_ids", "pixel_values"])
def test_raw_tensor_rows_count_against_the_item_limit(server, model, size, name):
    """300 rows of raw tensors used to pass the item limit and wait for a 503 that could never clear."""
    rows = 300
    shape = [rows, 4] if name == "input_ids" else [rows, 3, size, size]
    array = np.ones(shape, dtype=np.int64 if name == "input_ids" else np.float32)
    head = json.dumps({"inputs": [{"name": name, "datatype": "INT64" if name == "input_ids" else "FP32", "shape": shape,
                                   "parameters": {"binary_data_size": array.nbytes}}]}).encode()
    body = head + array.tobytes()
    if len(body) > 2 * 1024 * 1024:  # pixels: fewer rows fit the body limit, still over 16 items
        rows = 20
        array = array[:rows]
        shape[0] = rows
        head = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": shape,
                                       "parameters": {"binary_data_size": array.nbytes}}]}).encode()
        body = head + array.tobytes()
    response = httpx.post(
        f"{server}/v2/models/{model}/infer", content=body,
        headers={"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))},
    )
    assert response.status_code == 400, response.text
    assert f"{rows} items" in response.json()["error"] and "at most 16" in response.json()["error"]
    still_serving(server)


def test_ids_and_their_mask_count_once(server, model):
    ids = {"name": "input_ids", "datatype": "INT64", "shape": [16, 2], "data": [1, 2] * 16}
    mask = {"name": "attention_mask", "datatype": "INT64", "shape": [16, 2], "data": [1, 1] * 16}
    response = httpx.post(f"{server}/v2/models/{model}/infer", json={"inputs": [ids, mask]})
    assert response.status_code == 200, response.text


def test_images_and_texts_still_count(server):
    image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10).decode()
    response = httpx.post(f"{server}/embed", json={"texts": ["a"] * 10, "images": [image] * 7})
    assert response.status_code == 400 and "17 items" in response.json()["error"]
