"""The Python client's ``rank``, ``classify_many`` and prompt ensembles, and ``mmship invoke
--rank`` / repeated ``--template`` / ``--labels`` with several images, against a real
server (tiny CLIP): what they print and return is what the routes answer."""

from __future__ import annotations

import base64
import json
from importlib.resources import files

import httpx
import pytest

from mmship.client import Client, RankResult
from mmship.core.cli.app import main
from mmship.core.errors import InputSpecError
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

TEXTS = ["a photo of a cat", "a cup of coffee", "a rocket"]
TEMPLATES = ["a photo of a {}", "art of a {}"]


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=2) as url:
        yield url


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("cat", "coffee"):
        path = folder / f"{name}.jpg"
        path.write_bytes(files("mmship.data").joinpath("probe", f"{name}.jpg").read_bytes())
        paths.append(path)
    return paths


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_client_rank_both_ways_is_the_routes_answer(server, photos):
    cat, coffee = photos
    with Client(server) as client:
        texts = client.rank(image=cat, texts=TEXTS, top_k=2)
        images = client.rank(text="a cup of coffee", images=[cat, coffee])
    raw = httpx.post(f"{server}/rank", json={"query": {"image": b64(cat)}, "candidates": {"texts": TEXTS}, "top_k": 2}).json()
    assert isinstance(texts, RankResult) and (texts.query, texts.candidates, texts.scoring) == ("image", 3, "softmax")
    assert [(r.index, r.text, r.cosine, r.probability) for r in texts.results] == [
        (r["index"], r["text"], r["cosine"], r["probability"]) for r in raw["results"]
    ]
    assert images.query == "text" and sorted(r.index for r in images.results) == [0, 1]
    assert all(r.text is None for r in images.results)


def test_client_rank_refuses_a_mix_before_sending(server, photos):
    cat, coffee = photos
    with Client(server) as client:
        for kwargs in ({"image": cat, "images": [coffee], "texts": ["a"]}, {"text": "a", "texts": ["b"]}, {"texts": ["a"]}):
            with pytest.raises(InputSpecError, match="ranking takes one query"):
                client.rank(**kwargs)


def test_client_classify_many_and_ensembles(server, photos):
    cat, coffee = photos
    with Client(server) as client:
        many = client.classify_many([cat, coffee], ["cat", "coffee"], templates=TEMPLATES)
        one = client.classify(coffee, "cat, coffee", templates=TEMPLATES)
        plain = client.classify(coffee, ["cat", "coffee"], "art of a {}")
    raw = httpx.post(
        f"{server}/classify", json={"images": [b64(cat), b64(coffee)], "labels": ["cat", "coffee"], "templates": TEMPLATES}
    ).json()
    assert [(r.probs, r.top) for r in many.results] == [(r["probs"], r["top"]) for r in raw["results"]]
    assert (many.probs, many.top) == (many.results[0].probs, many.results[0].top)
    assert one.results[0].probs == pytest.approx(many.results[1].probs, abs=1e-6)
    assert plain.probs != pytest.approx(one.probs, abs=1e-6), "one template is not the ensemble"
    assert many.ranked(1)[0][0] == many.results[1].top


def test_invoke_rank_texts_for_an_image(server, photos, capsys):
    cat, _ = photos
    args = ["invoke", server, "--rank", "--image", str(cat), "--top-k", "2"] + [a for t in TEXTS for a in ("--text", t)]
    assert main(args + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    raw = httpx.post(f"{server}/rank", json={"query": {"image": b64(cat)}, "candidates": {"texts": TEXTS}, "top_k": 2}).json()
    assert doc["query"] == "image" and doc["scoring"] == "softmax"
    assert [(r["candidate"], r["cosine"], r["softmax"]) for r in doc["results"]] == [
        (r["text"], r["cosine"], r["probability"]) for r in raw["results"]
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cat.jpg: 2 of 3 ranked" in out and raw["results"][0]["text"] in out and "softmax" in out


def test_invoke_rank_images_for_a_text(server, photos, capsys):
    cat, coffee = photos
    assert main(["invoke", server, "--rank", "--text", "a cup of coffee", "--image", str(cat), "--image", str(coffee), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["query"] == "text" and sorted(r["candidate"] for r in doc["results"]) == ["cat.jpg", "coffee.jpg"]


def test_invoke_rank_needs_one_query(server, photos, capsys):
    cat, coffee = photos
    assert main(["invoke", server, "--rank", "--image", str(cat), "--image", str(coffee), "--text", "a", "--text", "b"]) == 1
    assert "--rank ranks several texts for one image, or several images for one text; got 2 image(s) and 2 text(s)" in capsys.readouterr().err


def test_invoke_labels_with_several_images_and_an_ensemble(server, photos, capsys):
    cat, coffee = photos
    args = ["invoke", server, "--image", str(cat), "--image", str(coffee), "--labels", "cat,coffee"]
    assert main(args + ["--template", TEMPLATES[0], "--template", TEMPLATES[1], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    raw = httpx.post(
        f"{server}/classify", json={"images": [b64(cat), b64(coffee)], "labels": ["cat", "coffee"], "templates": TEMPLATES}
    ).json()
    for name, result in zip(("cat.jpg", "coffee.jpg"), raw["results"], strict=True):
        assert doc[name] == dict(zip(["cat", "coffee"], result["probs"], strict=True)) | {"top": result["top"]}
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cat.jpg: zero-shot" in out and "coffee.jpg: zero-shot" in out


def test_serve_flags_size_the_label_cache(tiny_clip_bundle, monkeypatch, capsys):
    from mmship.core.errors import MmshipError
    from mmship.serving import serve

    seen = {}

    def capture(bundle, settings, *rest):
        seen["settings"] = settings
        raise MmshipError("captured")

    monkeypatch.setattr(serve, "build_server", capture)
    assert main(["serve", str(tiny_clip_bundle), "--label-cache-size", "0", "--label-cache-mb", "1.5"]) == 1
    assert (seen["settings"].label_cache_entries, seen["settings"].label_cache_bytes) == (0, 1536 * 1024)
    assert main(["serve", str(tiny_clip_bundle)]) == 1
    assert (seen["settings"].label_cache_entries, seen["settings"].label_cache_bytes) == (10_000, 64 * 1024 * 1024)
    capsys.readouterr()
    assert main(["serve", str(tiny_clip_bundle), "--label-cache-size", "-1"]) == 1
    assert "label_cache_entries: Input should be greater than or equal to 0" in capsys.readouterr().err
