"""/classify at scale, over HTTP: prompt ensembles against CLIP's own recipe computed from
the torch model, several images per request, the label-embedding cache (identical answers,
hits that run no text graph, bounds and metrics) and the per-request limits built the way
an attacker would (a small body whose prompts multiply)."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
from importlib.resources import files

from tests.helpers.servers import running_server
from tests.plugins.serving.zero_shot_reference import clip_features, ensemble, metric, prompts_for, softmax_rows, unit

pytestmark = pytest.mark.network

CAT = files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()
COFFEE = files("mmship.data").joinpath("probe", "coffee.jpg").read_bytes()
ROCKET = files("mmship.data").joinpath("probe", "rocket.jpg").read_bytes()
LABELS = ["cat", "dog", "coffee cup", "rocket"]
TEMPLATES = ["a photo of a {}", "a blurry photo of the {}", "art of a {}"]
LIMITS = {"max_items_per_request": 32, "max_queue_rows": 64, "max_request_text_chars": 3000, "max_request_pixels": 350_000}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=2, **LIMITS) as url:
        yield url


@pytest.fixture(scope="module")
def uncached(tiny_clip_bundle):
    """The same model with the cache off: every label computed every time."""
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=2, label_cache_entries=0, **LIMITS) as url:
        yield url


def classify(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/classify", json=body, timeout=30)


def still_serving(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert classify(url, image=b64(CAT), labels=["cat"]).status_code == 200


# --- prompt ensembles and several images, against the model itself ----------------------


def test_an_ensemble_over_several_images_is_clips_recipe_from_the_models_embeddings(server, tiny_clip_dir):
    response = classify(server, images=[b64(CAT), b64(COFFEE)], labels=LABELS, templates=TEMPLATES)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "labels", "scoring", "results", "truncated"}
    assert body["labels"] == LABELS and body["scoring"] == "softmax" and body["truncated"] == [False] * 4
    image, text, scale = clip_features(tiny_clip_dir, [CAT, COFFEE], prompts_for(LABELS, TEMPLATES))
    want = softmax_rows(scale * unit(image) @ ensemble(text, len(LABELS), len(TEMPLATES)).T)
    assert len(body["results"]) == 2
    for result, reference in zip(body["results"], want, strict=True):
        np.testing.assert_allclose(result["probs"], reference, atol=1e-4)
        assert result["top"] == LABELS[int(np.argmax(result["probs"]))]
    # an ensemble is not the first template alone
    first = softmax_rows(scale * unit(image) @ unit(text[:: len(TEMPLATES)]).T)
    assert not np.allclose(want, first, atol=1e-3)


def test_one_template_and_one_image_keep_their_answer_and_shape(server, tiny_clip_dir):
    response = classify(server, image=b64(CAT), labels=LABELS, template="a photo of a {}")
    body = response.json()
    assert set(body) == {"model", "labels", "probs", "top", "scoring", "truncated"}
    image, text, scale = clip_features(tiny_clip_dir, [CAT], prompts_for(LABELS, ["a photo of a {}"]))
    np.testing.assert_allclose(body["probs"], softmax_rows(scale * unit(image) @ unit(text).T)[0], atol=1e-4)
    assert classify(server, image=b64(CAT), labels=LABELS).json()["probs"] == body["probs"], "the default template"
    ensemble_of_one = classify(server, image=b64(CAT), labels=LABELS, templates=["a photo of a {}"]).json()
    assert ensemble_of_one["probs"] == body["probs"]


def test_each_image_of_a_list_gets_the_answer_it_gets_alone(server):
    many = classify(server, images=[b64(CAT), b64(COFFEE), b64(ROCKET)], labels=LABELS).json()["results"]
    for image, result in zip((CAT, COFFEE, ROCKET), many, strict=True):
        alone = classify(server, image=b64(image), labels=LABELS).json()
        np.testing.assert_allclose(result["probs"], alone["probs"], atol=1e-6)
        assert result["top"] == alone["top"]
    single_list = classify(server, images=[b64(CAT)], labels=LABELS).json()
    assert len(single_list["results"]) == 1 and "probs" not in single_list, "images: [one] answers the list shape"


# --- the cache ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"image": b64(CAT), "labels": ["tabby cat", "puppy", "espresso"]},
        {"images": [b64(CAT), b64(ROCKET)], "labels": ["tabby", "space rocket"], "templates": TEMPLATES},
    ],
    ids=["one-template", "ensemble-two-images"],
)
def test_answers_from_the_cache_are_identical_to_computed_ones(server, uncached, body):
    hits = metric(server, "mmship_label_cache_hits_total", model=_model(server))
    first = classify(server, **body)
    second = classify(server, **body)
    without = classify(uncached, **body)
    assert first.status_code == 200, first.text
    assert metric(server, "mmship_label_cache_hits_total", model=_model(server)) - hits == len(body["labels"])
    assert first.content == second.content == without.content


def _model(url: str) -> str:
    return httpx.get(f"{url}/v2").json()["models"][0]


def test_a_hit_runs_no_text_graph(server):
    body = {"image": b64(CAT), "labels": ["lynx", "ocelot", "margay"], "templates": TEMPLATES}
    assert classify(server, **body).status_code == 200
    text_runs = metric(server, "mmship_batch_size_count", graph="text")
    image_runs = metric(server, "mmship_batch_size_count", graph="image")
    misses = metric(server, "mmship_label_cache_misses_total", model=_model(server))
    assert classify(server, **body).status_code == 200
    assert metric(server, "mmship_batch_size_count", graph="text") == text_runs, "every label came from the cache"
    assert metric(server, "mmship_batch_size_count", graph="image") == image_runs + 1
    assert metric(server, "mmship_label_cache_misses_total", model=_model(server)) == misses
    rows = metric(server, "mmship_batch_size_sum", graph="text")
    assert classify(server, image=b64(CAT), labels=["lynx", "caracal"], templates=TEMPLATES).status_code == 200
    assert metric(server, "mmship_batch_size_sum", graph="text") - rows == len(TEMPLATES), "only the new label's prompts ran"


def test_another_template_is_never_answered_from_a_cached_label(server, uncached):
    labels = ["heron", "egret"]
    assert classify(server, image=b64(CAT), labels=labels, template="a photo of a {}").status_code == 200
    misses = metric(server, "mmship_label_cache_misses_total", model=_model(server))
    for template in ("a sketch of a {}", "{}", "a photo of a {}."):
        cached = classify(server, image=b64(CAT), labels=labels, template=template)
        assert cached.content == classify(uncached, image=b64(CAT), labels=labels, template=template).content
    ensemble_body = {"image": b64(CAT), "labels": labels, "templates": ["a photo of a {}", "a sketch of a {}"]}
    assert classify(server, **ensemble_body).content == classify(uncached, **ensemble_body).content
    assert metric(server, "mmship_label_cache_misses_total", model=_model(server)) - misses == 4 * len(labels)


def test_the_bounds_evict_and_the_metrics_say_so(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=2, label_cache_entries=3) as url:
        model = _model(url)
        assert classify(url, image=b64(CAT), labels=["a", "b", "c", "d", "e"]).status_code == 200
        assert metric(url, "mmship_label_cache_entries") == 3
        assert metric(url, "mmship_label_cache_evictions_total", model=model) == 2
        assert metric(url, "mmship_label_cache_misses_total", model=model) == 5
        assert metric(url, "mmship_label_cache_bytes") > 3 * 24 * 4  # three 24-dim float32 vectors and their keys
        assert classify(url, image=b64(CAT), labels=["e"]).status_code == 200
        assert metric(url, "mmship_label_cache_hits_total", model=model) == 1, "the most recent labels stayed"
        text = httpx.get(f"{url}/metrics").text
        for name in ("hits_total", "misses_total", "evictions_total"):
            assert f'mmship_label_cache_{name}{{model="{model}"}}' in text


# --- limits: built to exceed them after the prompts multiply -------------------------------


def test_labels_times_templates_over_the_item_limit_is_refused_before_anything_runs(server):
    text_runs = metric(server, "mmship_batch_size_count", graph="text")
    templates = [f"photo {i} of a {{}}" for i in range(8)]
    response = classify(server, image=b64(CAT), labels=["a", "b", "c", "d"], templates=templates)  # 1 + 4 x 8 = 33 > 32
    assert response.status_code == 400
    assert response.json()["error"].startswith("the request has 33 items (images + labels x templates prompts); this server takes at most 32")
    assert classify(server, image=b64(CAT), labels=["a", "b", "c"], templates=templates).status_code == 200  # 25
    images = [b64(CAT)] * 29
    assert classify(server, images=images, labels=["a", "b", "c", "d"]).status_code == 400  # 29 + 4
    assert metric(server, "mmship_batch_size_count", graph="text") == text_runs + 1, "only the request that fitted ran"
    still_serving(server)


def test_a_small_body_whose_prompts_exceed_the_character_cap_is_refused(server):
    templates = ["{}" + "x" * 200, "{}" + "y" * 200]  # 2 templates x 8 labels = 16 prompts of 203 characters
    response = classify(server, image=b64(CAT), labels=[f"l{i:02d}" for i in range(8)], templates=templates)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "label prompts hold 3,248 characters together, more than the cap of 3,000" in error and "Fix:" in error
    still_serving(server)


def test_the_pixel_cap_counts_every_image_of_the_list(server):
    assert classify(server, images=[b64(COFFEE)] * 3, labels=["cup"]).status_code == 200  # 3 x 384 x 256 = 294,912
    response = classify(server, images=[b64(COFFEE)] * 4, labels=["cup"])  # 393,216 > 350,000
    assert response.status_code == 400
    assert "pixels" in response.json()["error"] and "350,000" in response.json()["error"]
    still_serving(server)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"image": "IMG", "images": ["IMG"], "labels": ["a"]}, "either 'image' (one image) or 'images' (a list of images), got both"),
        ({"images": [], "labels": ["a"]}, "images: List should have at least 1 item"),
        ({"image": "IMG", "labels": ["a"], "template": "a {}", "templates": ["b {}"]}, "both 'template' and 'templates'"),
        ({"image": "IMG", "labels": ["a"], "templates": []}, "templates: List should have at least 1 item"),
        ({"image": "IMG", "labels": ["a"], "templates": ["a {}", "b {} {kind}"]}, "templates[1]: template 'b {} {kind}' must hold exactly one '{}'"),
        ({"image": "IMG", "labels": ["a"], "templates": ["a {}", "no slot"]}, "templates[1]: template 'no slot' has no '{}'"),
        ({"image": "IMG", "labels": ["a"], "templates": "a {}"}, "templates: Input should be a valid list"),
        ({"images": ["IMG", "not an image"], "labels": ["a"]}, "images[1]"),
    ],
    ids=["image-and-images", "no-images", "template-and-templates", "no-templates", "bad-brace", "no-slot", "string", "bad-image"],
)
def test_malformed_classify_requests_say_what_was_expected(server, body, words):
    body = {k: ([b64(CAT) if v == "IMG" else v for v in value] if isinstance(value, list) and k.startswith("image") else
                (b64(CAT) if value == "IMG" else value)) for k, value in body.items()}
    response = classify(server, **body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"] and "Fix:" in response.json()["error"]


def test_many_prompts_run_in_batches_of_the_servers_size_not_one_huge_run(tiny_clip_bundle, uncached):
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=2, max_batch_size=4, **LIMITS) as url:
        body = {"image": b64(CAT), "labels": ["ibis", "stork", "crane"], "templates": TEMPLATES}  # 9 prompts
        runs = metric(url, "mmship_batch_size_count", graph="text")
        small = metric(url, "mmship_batch_size_bucket", graph="text", le="4.0")
        response = classify(url, **body)
        assert response.status_code == 200, response.text
        added = metric(url, "mmship_batch_size_count", graph="text") - runs
        assert added >= 3 and metric(url, "mmship_batch_size_bucket", graph="text", le="4.0") - small == added
        np.testing.assert_allclose(response.json()["probs"], classify(uncached, **body).json()["probs"], atol=1e-6)
