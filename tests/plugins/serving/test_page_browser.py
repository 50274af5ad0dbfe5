"""The try-it page at ``/`` in headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real server with an API key: what a person sees after choosing a photo and
typing labels, or choosing photos and typing a query (ranked through ``POST /rank``). A screenshot of each run lands in ``test-artifacts/``."""

from __future__ import annotations

import base64
import os
import re
import shutil
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from mmship.core.bundle import Bundle
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

KEY = "page-key-51e0-0123456789"  # keys have at least 16 characters
LABELS = ["cat", "dog", "car"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
PHOTO = files("mmship.data").joinpath("probe", "cat.jpg")


def chromium_path() -> str:
    """Debian's chromium (Playwright's own browser download is not reachable here)."""
    path = os.environ.get("MMSHIP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no Chromium found: install it (apt-get install -y chromium; .ci/run does) or set MMSHIP_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=5, api_key=KEY) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"], headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.goto(f"{server}/")
    yield page
    context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "cat.jpg"
    path.write_bytes(PHOTO.read_bytes())
    return path


@pytest.fixture(scope="module")
def coffee_photo(photo) -> Path:
    path = photo.parent / "coffee.jpg"
    path.write_bytes(files("mmship.data").joinpath("probe", "coffee.jpg").read_bytes())
    return path


def choose_photo(page, photo: Path) -> None:
    choose_photos(page, [photo])


def choose_photos(page, photos: list[Path]) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Drop, paste or choose images").click()
    chooser.value.set_files([str(p) for p in photos])
    page.get_by_role("img", name=f"image {len(photos)}").wait_for()


def connect(page, name: str) -> None:
    """Type the key; the page then shows the model."""
    from playwright.sync_api import expect

    expect(page.get_by_text("This server needs an API key")).to_be_visible()
    page.get_by_label("API key").fill(KEY)
    page.get_by_label("API key").press("Enter")
    page.get_by_label("API key").blur()
    expect(page.locator("header").get_by_text(name, exact=True)).to_be_visible()


def bar_fraction(page, label: str) -> float:
    """How much of the bar named ``label`` is filled, as drawn on screen."""
    meter = page.get_by_role("meter", name=label, exact=True)
    track = meter.bounding_box()
    fill = meter.locator("> *").bounding_box()
    assert track and fill and track["width"] > 100
    return fill["width"] / track["width"]


def test_labels_show_the_servers_answer_as_bars(page, server, tiny_clip_bundle, photo):
    from playwright.sync_api import expect

    name = Bundle.load(tiny_clip_bundle).manifest.name
    connect(page, name)
    expect(page.get_by_text("adapter", exact=True)).to_be_visible()
    expect(page.get_by_text("fp32", exact=True)).to_be_visible()
    choose_photo(page, photo)
    page.get_by_label("Labels, comma-separated").fill(", ".join(LABELS))
    page.get_by_role("button", name="Score").click()
    expected = httpx.post(
        f"{server}/classify", headers={"authorization": f"Bearer {KEY}"},
        json={"image": base64.b64encode(PHOTO.read_bytes()).decode(), "labels": LABELS},
    ).json()
    expect(page.get_by_text(f"Top: {expected['top']}", exact=True)).to_be_visible()
    for label, prob in zip(expected["labels"], expected["probs"]):
        expect(page.get_by_text(f"{prob * 100:.1f}%", exact=True).first).to_be_visible()
        assert abs(bar_fraction(page, label) - prob) < 0.01, label
    expect(page.get_by_text(re.compile(r"^Latency: \d+ ms \(POST /classify, softmax\)$"))).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-labels.png"), full_page=True)


def test_a_query_ranks_the_images_through_rank(page, server, tiny_clip_bundle, photo, coffee_photo):
    """Two photos and a query: the page shows /rank's order, each image's cosine (the same
    as /v1/embeddings' embeddings give) and its probability under the model's scoring as the bar."""
    from playwright.sync_api import expect

    uris = ["data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode() for p in (photo, coffee_photo)]
    auth = {"authorization": f"Bearer {KEY}"}
    ranked = httpx.post(
        f"{server}/rank", headers=auth, json={"query": {"text": "a photo of a cat"}, "candidates": {"images": uris}}
    ).json()
    answer = httpx.post(
        f"{server}/v1/embeddings", headers=auth,
        json={"input": [{"text": "a photo of a cat"}] + [{"image": u} for u in uris], "encoding_format": "float"},
    ).json()
    query, *images = (item["embedding"] for item in answer["data"])
    for result in ranked["results"]:
        assert abs(result["cosine"] - sum(q * v for q, v in zip(query, images[result["index"]]))) < 1e-4
    connect(page, Bundle.load(tiny_clip_bundle).manifest.name)
    choose_photos(page, [photo, coffee_photo])
    page.get_by_label("Query (rank the images)").check()
    page.get_by_label("Query", exact=True).fill("a photo of a cat")
    page.get_by_role("button", name="Score").click()
    best = ranked["results"][0]
    expect(page.get_by_text(f"Top: image {best['index'] + 1}", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"POST /rank, cosine · softmax"))).to_be_visible()
    shown = [page.get_by_role("meter").nth(i).get_attribute("aria-label") for i in range(2)]
    assert shown == [f"image {r['index'] + 1}" for r in ranked["results"]], "the bars are in /rank's order"
    for result in ranked["results"]:
        name = f"image {result['index'] + 1}"
        expect(page.get_by_text(f"{result['cosine']:.3f} · {result['probability'] * 100:.1f}%", exact=True)).to_be_visible()
        assert abs(bar_fraction(page, name) - result["probability"]) < 0.01
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-query.png"), full_page=True)


def test_a_wrong_key_says_so(page):
    from playwright.sync_api import expect

    page.get_by_label("API key").fill("wrong")
    page.get_by_label("API key").press("Enter")
    page.get_by_label("API key").blur()
    expect(page.get_by_text(re.compile("needs an API key.*missing or wrong API key"))).to_be_visible()
    expect(page.get_by_text("not connected", exact=True)).to_be_visible()


def test_several_models_get_a_selector_and_each_answers(browser, tiny_clip_bundle, tiny_siglip_bundle, photo):
    """Two models served: the header offers both, the first is chosen; choosing the SigLIP
    shows its metadata and scores the photo with it (its sigmoid scoring, its probabilities)."""
    from playwright.sync_api import expect

    clip, siglip = (Bundle.load(b).manifest.name for b in (tiny_clip_bundle, tiny_siglip_bundle))
    with running_server([tiny_clip_bundle, tiny_siglip_bundle], max_delay_ms=5) as url:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        page.goto(f"{url}/")
        selector = page.get_by_label("Model")
        expect(selector).to_be_visible()
        expect(selector).to_have_value(clip)
        assert selector.locator("option").all_inner_texts() == [clip, siglip]
        selector.select_option(siglip)
        expect(page.locator("#model")).to_have_text(siglip)
        expect(page.get_by_text("sigmoid", exact=True)).to_be_visible()
        choose_photo(page, photo)
        page.get_by_label("Labels, comma-separated").fill(", ".join(LABELS))
        page.get_by_role("button", name="Score").click()
        expected = httpx.post(
            f"{url}/classify", json={"image": base64.b64encode(PHOTO.read_bytes()).decode(), "labels": LABELS, "model": siglip},
        ).json()
        expect(page.get_by_text(re.compile(r"^Latency: \d+ ms \(POST /classify, sigmoid\)$"))).to_be_visible()
        for label, prob in zip(expected["labels"], expected["probs"]):
            assert abs(bar_fraction(page, label) - prob) < 0.01, label
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page-two-models.png"), full_page=True)
        context.close()
