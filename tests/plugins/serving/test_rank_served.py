"""POST /rank over HTTP: texts for an image and images for a text, ordered and scored as the
models themselves score them (CLIP's softmax, SigLIP's sigmoid), top-k, the label cache
shared with /classify, limits built to be exceeded, and malformed requests."""

from __future__ import annotations

import base64
import json
import shutil
from importlib.resources import files
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from mmship.core.bundle import MANIFEST
from mmship.scoring import sigmoid
from tests.helpers.servers import running_server
from tests.plugins.serving.test_scoring_served import siglip_reference_logits
from tests.plugins.serving.zero_shot_reference import clip_features, metric, softmax_rows, unit

pytestmark = pytest.mark.network

PHOTOS = {name: files("mmship.data").joinpath("probe", f"{name}.jpg").read_bytes() for name in ("cat", "coffee", "rocket", "camera")}
TEXTS = ["a photo of a cat", "a cup of coffee", "a rocket on the launch pad", "a camera man", "a dog"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    with running_server(
        tiny_clip_bundle, precision="fp32", max_delay_ms=2, max_items_per_request=8, max_queue_rows=64,
        max_request_text_chars=400, max_request_pixels=300_000,
    ) as url:
        yield url


def rank(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/rank", json=body, timeout=30)


def still_serving(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert rank(url, {"query": {"text": "a cat"}, "candidates": {"images": [b64(PHOTOS["cat"])]}}).status_code == 200


def test_texts_for_an_image_in_the_models_order_with_its_softmax(server, tiny_clip_dir):
    response = rank(server, {"query": {"image": b64(PHOTOS["cat"])}, "candidates": {"texts": TEXTS}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["query"], body["scoring"], body["candidates"], body["truncated"]) == ("image", "softmax", 5, [False] * 5)
    image, text, scale = clip_features(tiny_clip_dir, [PHOTOS["cat"]], TEXTS)
    cosine = (unit(image) @ unit(text).T)[0]
    probability = softmax_rows(scale * cosine)
    assert [r["index"] for r in body["results"]] == list(np.argsort(-cosine)), "best first"
    for result in body["results"]:
        assert result["text"] == TEXTS[result["index"]]
        assert result["cosine"] == pytest.approx(cosine[result["index"]], abs=1e-5)
        assert result["probability"] == pytest.approx(probability[result["index"]], abs=1e-4)
    assert sum(r["probability"] for r in body["results"]) == pytest.approx(1.0), "a softmax over every candidate"


def test_images_for_a_text_softmax_over_the_images_top_k(server, tiny_clip_dir):
    images = [PHOTOS[n] for n in ("cat", "coffee", "rocket")]
    body = rank(server, {"query": {"text": "a cup of coffee"}, "candidates": {"images": [b64(i) for i in images]}, "top_k": 2}).json()
    assert (body["query"], body["candidates"], len(body["results"])) == ("text", 3, 2)
    image, text, scale = clip_features(tiny_clip_dir, images, ["a cup of coffee"])
    cosine = (unit(image) @ unit(text).T)[:, 0]
    probability = softmax_rows(scale * cosine)  # logits_per_text: over the images
    assert [r["index"] for r in body["results"]] == list(np.argsort(-cosine)[:2])
    for result in body["results"]:
        assert "text" not in result
        assert result["cosine"] == pytest.approx(cosine[result["index"]], abs=1e-5)
        assert result["probability"] == pytest.approx(probability[result["index"]], abs=1e-4)


def test_top_k_past_the_candidates_answers_them_all_and_ties_keep_their_order(server):
    body = rank(server, {"query": {"image": b64(PHOTOS["cat"])}, "candidates": {"texts": ["a dog", "a dog", "a cat"]}, "top_k": 7}).json()
    assert len(body["results"]) == 3
    dogs = [r["index"] for r in body["results"] if r["text"] == "a dog"]
    assert dogs == [0, 1], "equal candidates stay in the order sent"


def test_ranking_texts_is_classifying_with_the_template_that_keeps_them_and_shares_its_cache(server):
    model = httpx.get(f"{server}/v2").json()["models"][0]
    texts = ["a tabby on a sofa", "an espresso"]
    classified = httpx.post(f"{server}/classify", json={"image": b64(PHOTOS["cat"]), "labels": texts, "template": "{}"}).json()
    hits = metric(server, "mmship_label_cache_hits_total", model=model)
    ranked = rank(server, {"query": {"image": b64(PHOTOS["cat"])}, "candidates": {"texts": texts}}).json()
    assert metric(server, "mmship_label_cache_hits_total", model=model) - hits == 2
    for result in ranked["results"]:
        assert result["probability"] == classified["probs"][result["index"]]


def test_siglip_ranks_with_its_own_sigmoid(tiny_siglip_bundle, tiny_siglip_dir):
    with running_server(tiny_siglip_bundle, precision="fp32", max_delay_ms=2) as url:
        body = rank(url, {"query": {"image": b64(PHOTOS["cat"])}, "candidates": {"texts": TEXTS}}).json()
        logits = siglip_reference_logits(tiny_siglip_dir, PHOTOS["cat"], TEXTS)[0]
        assert body["scoring"] == "sigmoid"
        for result in body["results"]:
            assert result["probability"] == pytest.approx(float(sigmoid(logits[result["index"]])), abs=2e-3)
        assert abs(sum(r["probability"] for r in body["results"]) - 1) > 0.05, "independent sigmoids"
        assert [r["index"] for r in body["results"]] == list(np.argsort(-logits, kind="stable"))


# --- limits and malformed requests ---------------------------------------------------------


def test_candidates_over_the_item_limit_are_refused(server):
    response = rank(server, {"query": {"image": b64(PHOTOS["cat"])}, "candidates": {"texts": [f"t{i}" for i in range(8)]}})
    assert response.status_code == 400  # 1 + 8 > 8
    assert response.json()["error"].startswith("the request has 9 items; this server takes at most 8 per request")
    still_serving(server)


def test_candidate_images_over_the_pixel_cap_are_refused(server):
    ok = rank(server, {"query": {"text": "x"}, "candidates": {"images": [b64(PHOTOS["cat"])] * 3}})  # 3 x 98,560
    assert ok.status_code == 200, ok.text
    response = rank(server, {"query": {"text": "x"}, "candidates": {"images": [b64(PHOTOS["cat"])] * 4}})
    assert response.status_code == 400 and "300,000" in response.json()["error"]
    still_serving(server)


def test_candidate_texts_over_the_character_cap_are_refused(server):
    texts = ["w" * 100] * 4 + ["w"]  # 401 characters > 400
    response = rank(server, {"query": {"image": b64(PHOTOS["cat"])}, "candidates": {"texts": texts}})
    assert response.status_code == 400 and "401 characters together, more than the cap of 400" in response.json()["error"]
    still_serving(server)


IMG = "IMG"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"query": {"image": IMG, "text": "a"}, "candidates": {"texts": ["a"]}}, 400, "query takes one image or one text, got both"),
        ({"query": {}, "candidates": {"texts": ["a"]}}, 400, "query takes one image or one text, got neither"),
        ({"query": {"text": "a"}, "candidates": {"texts": ["a"], "images": [IMG]}}, 400, "candidates takes texts or images, got both"),
        ({"query": {"text": "a"}, "candidates": {}}, 400, "candidates takes texts or images, got neither"),
        ({"query": {"text": "a"}, "candidates": {"texts": ["b"]}}, 400, "a query text ranks candidate images, got candidate texts"),
        ({"query": {"image": IMG}, "candidates": {"images": [IMG]}}, 400, "a query image ranks candidate texts, got candidate images"),
        ({"query": {"text": "a"}, "candidates": {"images": []}}, 400, "candidates.images: List should have at least 1 item"),
        ({"query": {"text": "a"}, "candidates": {"images": [IMG]}, "top_k": 0}, 400, "top_k: Input should be greater than or equal to 1"),
        ({"query": {"text": "a"}, "candidates": {"images": [IMG]}, "top_k": 1.5}, 400, "top_k: Input should be a valid integer"),
        ({"query": {"text": "a"}, "candidates": {"images": [IMG, "bad"]}}, 400, "candidates.images[1]"),
        ({"query": {"text": "a"}, "candidates": {"images": [IMG]}, "extra": 1}, 400, "extra: Extra inputs are not permitted"),
        ({"query": {"text": "a"}, "candidates": {"images": [IMG]}, "model": "nope"}, 404, "the model 'nope' does not exist here"),
    ],
    ids=["query-both", "query-neither", "candidates-both", "candidates-neither", "text-texts", "image-images",
         "no-candidates", "top-k-zero", "top-k-float", "bad-image", "extra-field", "unknown-model"],
)
def test_malformed_rank_requests_say_what_was_expected(server, body, status, words):
    def fill(value):
        if value == IMG:
            return b64(PHOTOS["cat"])
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    response = rank(server, fill(body))
    assert response.status_code == status, response.text
    assert words in response.json()["error"] and "Fix:" in response.json()["error"]


@pytest.fixture(scope="module")
def unscored_bundle(tiny_clip_bundle, tmp_path_factory) -> Path:
    """The tiny CLIP bundle as an adapter declaring no image-text score would write it."""
    folder = tmp_path_factory.mktemp("unscored") / "clip"
    shutil.copytree(tiny_clip_bundle, folder)
    raw = yaml.safe_load((folder / MANIFEST).read_text())
    raw["scoring"] = {"kind": "none"}
    (folder / MANIFEST).write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_a_model_without_an_image_text_score_can_neither_rank_nor_classify(unscored_bundle):
    with running_server(unscored_bundle, max_delay_ms=2) as url:
        response = rank(url, {"query": {"text": "a"}, "candidates": {"images": [b64(PHOTOS["cat"])]}})
        assert response.status_code == 400
        assert "has no image-text score (scoring: none) to rank with" in response.json()["error"]
        response = httpx.post(f"{url}/classify", json={"images": [b64(PHOTOS["cat"])], "labels": ["a"], "templates": ["{}"]})
        assert response.status_code == 400
        assert "has no image-text score (scoring: none) to classify with" in response.json()["error"]


def test_the_openapi_document_describes_rank_and_classify_without_dangling_references(server):
    doc = httpx.get(f"{server}/openapi.json").json()
    text = json.dumps(doc)
    assert '"#/$defs/' not in text, "a $defs reference points nowhere in the OpenAPI document"
    rank_body = doc["paths"]["/rank"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(rank_body["properties"]["query"]["properties"]) == {"image", "text"}
    answer = doc["paths"]["/rank"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(answer["properties"]["results"]["items"]["properties"]) == {"index", "cosine", "probability", "text"}
    classify = doc["paths"]["/classify"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {frozenset(shape["properties"]) for shape in classify["anyOf"]} == {
        frozenset({"model", "labels", "probs", "top", "scoring", "truncated"}),
        frozenset({"model", "labels", "scoring", "results", "truncated"}),
    }
    assert "/v1/embeddings" in doc["paths"]
