"""The bundle's scoring, served: SigLIP's sigmoid, CLIP's softmax, and bundles built before
scoring and pad ids were recorded (served as they always were)."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage.data
import torch
import yaml
from PIL import Image

from mmship.core.bundle import MANIFEST, Bundle
from mmship.core.specs import ScoringSpec
from mmship.scoring import Scorer, cosine_matrix, sigmoid, softmax
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

LABELS = ["cat", "dog", "rocket", "coffee cup"]
TEMPLATE = "a photo of a {}"


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


CAT = _jpeg(skimage.data.chelsea())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def siglip_reference_logits(folder: Path, image: bytes, texts: list[str]) -> np.ndarray:
    """``SiglipModel(...).logits_per_image`` for ``image`` and ``texts``, prepared by the
    model's own HF processor (texts padded to max_length, ``input_ids`` only)."""
    from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

    model = SiglipModel.from_pretrained(str(folder)).eval()
    pixels = AutoImageProcessor.from_pretrained(str(folder), backend="pil")(
        Image.open(io.BytesIO(image)), return_tensors="pt"
    )["pixel_values"]
    length = model.config.text_config.max_position_embeddings
    ids = AutoTokenizer.from_pretrained(str(folder))(
        texts, padding="max_length", max_length=length, truncation=True, return_tensors="pt"
    )["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixels).logits_per_image.numpy()


@pytest.fixture(scope="module")
def siglip_server(tiny_siglip_bundle):
    with running_server(tiny_siglip_bundle, precision="fp32", max_delay_ms=5) as url:
        yield url


def test_siglip_bundle_records_sigmoid_scoring_and_pad_ids(tiny_siglip_bundle, tiny_siglip_dir):
    manifest = Bundle.load(tiny_siglip_bundle).manifest
    assert manifest.scoring.kind == "sigmoid"
    assert manifest.scoring.logit_bias == pytest.approx(-1.5)
    assert manifest.scoring.logit_scale == pytest.approx(np.exp(2.0))
    assert manifest.preprocess.text.padding == "max_length" and manifest.preprocess.text.max_length == 16
    assert manifest.preprocess.text.pad_ids == {"input_ids": 1}  # SigLIP pads with its eos token


def test_inspect_shows_the_scoring(tiny_siglip_bundle, legacy_clip_bundle, capsys):
    from mmship.core.cli.app import main

    assert main(["inspect", str(tiny_siglip_bundle)]) == 0
    assert "scoring: sigmoid of logit_scale 7.389 x cosine(image_embeds, text_embeds) + logit_bias -1.5" in capsys.readouterr().out
    assert main(["inspect", str(legacy_clip_bundle)]) == 0
    assert "scoring: softmax of logit_scale 10 x cosine" in capsys.readouterr().out


def test_siglip_classify_answers_sigmoid_scores_of_the_torch_model(siglip_server, tiny_siglip_dir):
    response = httpx.post(f"{siglip_server}/classify", json={"image": _b64(CAT), "labels": LABELS, "template": TEMPLATE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scoring"] == "sigmoid" and body["labels"] == LABELS
    probs = np.array(body["probs"])
    logits = siglip_reference_logits(tiny_siglip_dir, CAT, [TEMPLATE.format(x) for x in LABELS])
    np.testing.assert_allclose(probs, sigmoid(logits)[0], atol=2e-3)
    assert abs(probs.sum() - 1) > 0.05  # independent sigmoids, not a softmax over the labels
    assert not np.allclose(probs, softmax(logits)[0], atol=1e-2)
    assert body["top"] == LABELS[int(np.argmax(probs))]


def test_siglip_v2_logits_and_metadata(siglip_server, tiny_siglip_dir, tiny_siglip_bundle):
    name = Bundle.load(tiny_siglip_bundle).manifest.name
    meta = httpx.get(f"{siglip_server}/v2/models/{name}").json()
    assert meta["parameters"]["scoring"] == "sigmoid"
    assert {"name": "logits_per_image", "datatype": "FP32", "shape": [-1, -1]} in meta["outputs"]
    assert [i["name"] for i in meta["inputs"]] == ["pixel_values", "input_ids", "image", "text"]
    texts = ["a photo of a cat", "a dog"]
    doc = {"inputs": [
        {"name": "image", "datatype": "BYTES", "shape": [1], "data": [_b64(CAT)], "parameters": {"content_type": "base64"}},
        {"name": "text", "datatype": "BYTES", "shape": [2], "data": texts},
    ]}
    response = httpx.post(f"{siglip_server}/v2/models/{name}/infer", json=doc)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in response.json()["outputs"]}
    np.testing.assert_allclose(outputs["logits_per_image"], siglip_reference_logits(tiny_siglip_dir, CAT, texts), atol=2e-3)


def test_siglip_embed_drops_the_logits(siglip_server):
    response = httpx.post(f"{siglip_server}/embed", json={"images": [_b64(CAT)], "texts": ["a cat", "a photo of the dog"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["embeds"] == {} and len(body["image_embeds"]) == 1 and len(body["text_embeds"]) == 2
    np.testing.assert_allclose(np.linalg.norm(body["text_embeds"], axis=1), 1.0, rtol=1e-6)


def test_clip_classify_is_still_a_softmax(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="fp32") as url:
        body = httpx.post(f"{url}/classify", json={"image": _b64(CAT), "labels": LABELS}).json()
    assert body["scoring"] == "softmax"
    assert sum(body["probs"]) == pytest.approx(1.0, abs=1e-6)


@pytest.fixture(scope="module")
def legacy_clip_bundle(tiny_clip_bundle, tmp_path_factory) -> Path:
    """The tiny CLIP bundle as mmship wrote it before scoring and pad ids were recorded:
    no ``scoring``, no ``preprocess.text.pad_ids``, ``adapter_data.logit_scale``."""
    folder = tmp_path_factory.mktemp("legacy") / "clip"
    shutil.copytree(tiny_clip_bundle, folder)
    raw = yaml.safe_load((folder / MANIFEST).read_text())
    raw.pop("scoring")
    raw["preprocess"]["text"].pop("pad_ids")
    raw["adapter_data"] = {"logit_scale": 10.0}
    (folder / MANIFEST).write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_a_bundle_from_before_keeps_clips_softmax(legacy_clip_bundle):
    manifest = Bundle.load(legacy_clip_bundle).manifest
    assert manifest.scoring is None and manifest.preprocess.text.pad_ids == {}
    assert Scorer.for_manifest(manifest).spec == ScoringSpec(kind="softmax", logit_scale=10.0)
    texts = ["a photo of a cat", "a dog", "a rocket"]
    with running_server(legacy_clip_bundle, precision="fp32") as url:
        body = httpx.post(f"{url}/classify", json={"image": _b64(CAT), "labels": ["cat", "dog"]}).json()
        doc = {"inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "data": [_b64(CAT)], "parameters": {"content_type": "base64"}},
            {"name": "text", "datatype": "BYTES", "shape": [3], "data": texts},
        ]}
        outputs = {o["name"]: np.array(o["data"]).reshape(o["shape"])
                   for o in httpx.post(f"{url}/v2/models/{manifest.name}/infer", json=doc).json()["outputs"]}
    assert body["scoring"] == "softmax" and sum(body["probs"]) == pytest.approx(1.0, abs=1e-6)
    expected = 10.0 * cosine_matrix(outputs["image_embeds"], outputs["text_embeds"])
    np.testing.assert_allclose(outputs["logits_per_image"], expected, rtol=1e-5, atol=1e-5)


def test_text_batches_pad_with_the_recorded_ids(tiny_clip_bundle, legacy_clip_bundle):
    """The batcher pads each text input with the manifest's pad id; a bundle from before
    gets what the tokenizer pads with (its pad token for ids, 0 for the mask)."""
    from mmship.serving.engine import Engine
    from mmship.serving.metrics import ServerMetrics
    from mmship.serving.service import ModelService
    from mmship.serving.settings import ServerSettings

    def pad_ids(folder: Path) -> dict[str, int]:
        service = ModelService(Engine(Bundle.load(folder), "fp32"), ServerSettings(), ServerMetrics())
        try:
            return service._pad_ids(service.engine.graphs["text"])
        finally:
            service._pool.shutdown()

    recorded = Bundle.load(tiny_clip_bundle).manifest.preprocess.text.pad_ids
    assert pad_ids(tiny_clip_bundle) == recorded == pad_ids(legacy_clip_bundle)
    assert recorded["attention_mask"] == 0 and recorded["input_ids"] != 0
    changed = yaml.safe_load((legacy_clip_bundle / MANIFEST).read_text())
    changed["preprocess"]["text"]["pad_ids"] = {"input_ids": 7, "attention_mask": 0}
    (legacy_clip_bundle / MANIFEST).write_text(yaml.safe_dump(changed, sort_keys=False))
    try:
        assert pad_ids(legacy_clip_bundle) == {"input_ids": 7, "attention_mask": 0}
    finally:
        changed["preprocess"]["text"].pop("pad_ids")
        (legacy_clip_bundle / MANIFEST).write_text(yaml.safe_dump(changed, sort_keys=False))
