"""The local server over real HTTP on 127.0.0.1: routes, protocols, metrics, bad input."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import skimage.data
from PIL import Image

from mmship.core.bundle import Bundle
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network


def jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


CAT = jpeg(skimage.data.chelsea())
COFFEE = jpeg(skimage.data.coffee())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    # Admission is not what these tests check (test_admission*.py do): on a slow or shared CI
    # machine the default 1 s budget refused parts of the concurrent bursts below with 503.
    with running_server(
        tiny_clip_bundle, precision="int8", max_delay_ms=20, max_body_bytes=2 * 1024 * 1024,
        max_image_pixels=1_000_000, latency_budget_ms=30_000,
    ) as url:
        yield url


@pytest.fixture(scope="module")
def model_name(tiny_clip_bundle):
    return Bundle.load(tiny_clip_bundle).manifest.name


@pytest.fixture(scope="module")
def image_size(tiny_clip_bundle):
    return Bundle.load(tiny_clip_bundle).manifest.preprocess.image.output_size[0]


def healthy(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    response = httpx.post(f"{url}/embed", json={"texts": ["a photo of a cat"]})
    assert response.status_code == 200, response.text


def test_health_and_metadata(server, model_name):
    assert httpx.get(f"{server}/v2/health/live").status_code == 200
    assert httpx.get(f"{server}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{server}/v2").json()
    assert meta["name"] == "mmship" and "binary_tensor_data" in meta["extensions"]
    model = httpx.get(f"{server}/v2/models/{model_name}").json()
    names = {i["name"]: i for i in model["inputs"]}
    assert names["pixel_values"]["datatype"] == "FP32" and names["pixel_values"]["shape"][:2] == [-1, 3]
    assert names["input_ids"]["datatype"] == "INT64"
    assert names["image"]["datatype"] == "BYTES" and names["text"]["datatype"] == "BYTES"
    assert {o["name"] for o in model["outputs"]} == {"image_embeds", "text_embeds", "logits_per_image"}
    assert httpx.get(f"{server}/v2/models/{model_name}/ready").status_code == 200
    missing = httpx.get(f"{server}/v2/models/nope")
    assert missing.status_code == 404 and model_name in missing.json()["error"]


def test_embed_images_and_texts(server):
    response = httpx.post(f"{server}/embed", json={"images": [b64(CAT), "data:image/jpeg;base64," + b64(COFFEE)], "texts": ["a cat", "coffee", "x"]})
    assert response.status_code == 200, response.text
    body = response.json()
    image = np.array(body["image_embeds"])
    text = np.array(body["text_embeds"])
    assert image.shape == (2, body["dim"]) and text.shape == (3, body["dim"])
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, rtol=1e-5)
    assert body["truncated"] == [False, False, False]


def test_classify_returns_probabilities(server):
    response = httpx.post(f"{server}/classify", json={"image": b64(CAT), "labels": ["cat", "dog", "car"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["labels"] == ["cat", "dog", "car"]
    assert abs(sum(body["probs"]) - 1) < 1e-6
    assert body["top"] == body["labels"][int(np.argmax(body["probs"]))]


def test_server_outputs_match_the_engine(server, tiny_clip_bundle):
    """HTTP answers equal the in-process engine's on the same preprocessed inputs."""
    from mmship.preprocess.pixels import ImagePreprocessor
    from mmship.serving.engine import Engine

    bundle = Bundle.load(tiny_clip_bundle)
    engine = Engine(bundle, precision="int8")
    pixels = ImagePreprocessor(bundle.manifest.preprocess.image).preprocess_images([CAT])
    expected = engine.graphs["image"]({"pixel_values": pixels})["image_embeds"]
    got = httpx.post(f"{server}/embed", json={"images": [b64(CAT)], "normalize": False}).json()["image_embeds"]
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-4, atol=1e-5)


def test_v2_json_with_base64_image_and_text(server, model_name):
    request = {
        "id": "req-1",
        "inputs": [
            {"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(CAT)], "parameters": {"content_type": "base64"}},
            {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a photo of a cat", "a dog"]},
        ],
    }
    response = httpx.post(f"{server}/v2/models/{model_name}/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-1" and body["model_name"] == model_name
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["logits_per_image"]["shape"] == [1, 2]
    assert outputs["image_embeds"]["datatype"] == "FP32"


def test_tritonclient_json_and_binary(server, model_name, image_size):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model_name)
    meta = client.get_model_metadata(model_name)
    assert meta["name"] == model_name

    image = triton.InferInput("image", [2], "BYTES")
    image.set_data_from_numpy(np.array([CAT, COFFEE], dtype=np.object_), binary_data=True)
    text = triton.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array(["a cat", "coffee"], dtype=np.object_), binary_data=False)
    outputs = [triton.InferRequestedOutput("logits_per_image", binary_data=True), triton.InferRequestedOutput("image_embeds", binary_data=False)]
    result = client.infer(model_name, [image, text], outputs=outputs)
    assert result.as_numpy("logits_per_image").shape == (2, 2)
    assert result.as_numpy("image_embeds").shape[0] == 2

    pixels = triton.InferInput("pixel_values", [1, 3, image_size, image_size], "FP32")
    pixels.set_data_from_numpy(np.random.default_rng(0).standard_normal((1, 3, image_size, image_size)).astype(np.float32), binary_data=True)
    result = client.infer(model_name, [pixels])
    assert result.as_numpy("image_embeds").shape[0] == 1


def v2(url, model, inputs):
    return httpx.post(f"{url}/v2/models/{model}/infer", json={"inputs": inputs})


BAD_INPUTS = {
    "channels_last": lambda size: [{"name": "pixel_values", "shape": [1, size, size, 3], "datatype": "FP32", "data": [0.0] * (size * size * 3)}],
    "wrong_datatype": lambda size: [{"name": "input_ids", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}],
    "length_mismatch": lambda size: [{"name": "input_ids", "shape": [1, 5], "datatype": "INT64", "data": [1, 2, 3, 4]}],
    "unknown_input": lambda size: [{"name": "pixels", "shape": [1], "datatype": "FP32", "data": [1.0]}],
    "empty_batch": lambda size: [{"name": "input_ids", "shape": [0, 5], "datatype": "INT64", "data": []}],
    "undecodable_image": lambda size: [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(b"this is not an image at all")], "parameters": {"content_type": "base64"}}],
    "truncated_jpeg": lambda size: [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(CAT[: len(CAT) // 3])], "parameters": {"content_type": "base64"}}],
    "decompression_bomb": lambda size: [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(png(Image.new("RGB", (2000, 1000))))], "parameters": {"content_type": "base64"}}],
}

EXPECTED_WORDS = {
    "channels_last": ["channels-last", "NCHW", "[1, {size}, {size}, 3]"],
    "wrong_datatype": ["input_ids", "INT64", "FP32"],
    "length_mismatch": ["5", "4"],
    "unknown_input": ["pixels", "pixel_values"],
    "empty_batch": ["empty"],
    "undecodable_image": ["image"],
    "truncated_jpeg": ["image"],
    "decompression_bomb": ["2000000", "1000000"],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_v2_input_is_a_clear_400_and_the_server_stays_healthy(server, model_name, image_size, case):
    response = v2(server, model_name, BAD_INPUTS[case](image_size))
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for word in EXPECTED_WORDS[case]:
        assert word.format(size=image_size) in message.replace(",", "").replace(" ", "") or word.format(size=image_size) in message, (word, message)
    healthy(server)


def test_url_images_are_never_fetched(server):
    response = httpx.post(f"{server}/embed", json={"images": ["http://127.0.0.1:9/cat.jpg"]})
    assert response.status_code == 400
    assert "never fetches" in response.json()["error"]
    healthy(server)


def test_body_over_limit_is_413(server):
    response = httpx.post(f"{server}/embed", content=b"{" + b" " * (3 * 1024 * 1024) + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    healthy(server)


def test_empty_request_is_400(server):
    response = httpx.post(f"{server}/embed", json={"images": [], "texts": []})
    assert response.status_code == 400
    assert "no inputs" in response.json()["error"]


def test_long_text_is_truncated_and_reported(server):
    response = httpx.post(f"{server}/embed", json={"texts": ["a photo of a cat " * 60, "short"]})
    assert response.status_code == 200
    assert response.json()["truncated"] == [True, False]


def test_one_bad_image_fails_only_its_request_under_concurrency(server):
    def call(i):
        image = CAT if i % 4 else b"garbage bytes"
        return httpx.post(f"{server}/embed", json={"images": [b64(image)]}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(16)))
    assert codes.count(400) == 4 and codes.count(200) == 12


def test_batches_form_under_concurrency(server, model_name):
    def call(i):
        return httpx.post(f"{server}/embed", json={"texts": [f"a photo number {i}"]}, timeout=30).status_code

    def metric(text, name):  # 0 before the graph's first batch (the test run alone)
        line = next((l for l in text.splitlines() if l.startswith(name)), f"{name} 0")
        return float(line.split()[-1])

    before = httpx.get(f"{server}/metrics").text
    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(call, range(48))) == {200}
    after = httpx.get(f"{server}/metrics").text
    text = f'{{graph="text",model="{model_name}"}}'
    rows = metric(after, f"mmship_batch_size_sum{text}") - metric(before, f"mmship_batch_size_sum{text}")
    batches = metric(after, f"mmship_batch_size_count{text}") - metric(before, f"mmship_batch_size_count{text}")
    assert rows == 48
    assert batches < rows, "no batch held more than one request"
    assert f'mmship_requests_total{{model="{model_name}",route="/embed",status="200"}}' in after
    assert "mmship_process_resident_memory_bytes" in after
    assert "mmship_queue_depth" in after


def test_api_key_required_when_set(tiny_clip_bundle):
    key = "s3cret-0123456789abcdef"
    with running_server(tiny_clip_bundle, precision="int8", api_key=key) as url:
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        denied = httpx.post(f"{url}/embed", json={"texts": ["x"]})
        assert denied.status_code == 401 and "Bearer" in denied.json()["error"]
        assert key not in denied.text
        allowed = httpx.post(f"{url}/embed", json={"texts": ["x"]}, headers={"Authorization": f"Bearer {key}"})
        assert allowed.status_code == 200
