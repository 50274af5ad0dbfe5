"""Raw token tensors are checked against the model's vocabulary before they reach a graph:
an id past the vocabulary used to fail inside onnxruntime's Gather (500, and the batch
re-run request by request), a negative one wrapped around silently, a mask of another
shape was accepted. The bundle records its vocabulary size; bundles built before read it
from the tokenizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from mmship.core.bundle import MANIFEST, Bundle
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

TINY_VOCAB = 523  # the tiny CLIP tokenizer and its model's token embedding (tests/helpers/tiny_models.py)


@pytest.fixture(scope="module")
def bundle_before_vocab(tiny_clip_bundle, tmp_path_factory) -> Path:
    """The tiny CLIP bundle as mmship wrote it before the vocabulary size was recorded."""
    folder = tmp_path_factory.mktemp("before-vocab") / "clip"
    shutil.copytree(tiny_clip_bundle, folder)
    raw = yaml.safe_load((folder / MANIFEST).read_text())
    raw["preprocess"]["text"].pop("vocab_size")
    (folder / MANIFEST).write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_the_build_records_the_vocabulary_size(tiny_clip_bundle, bundle_before_vocab):
    assert Bundle.load(tiny_clip_bundle).manifest.preprocess.text.vocab_size == TINY_VOCAB
    assert Bundle.load(bundle_before_vocab).manifest.preprocess.text.vocab_size is None


def ids(*rows: list[int], name: str = "input_ids") -> dict:
    return {"name": name, "datatype": "INT64", "shape": [len(rows), len(rows[0])], "data": [v for r in rows for v in r]}


CASES = {
    "past-the-vocabulary": ([ids([1, 10**9])], "holds token id 1000000000; this model's vocabulary has ids 0 to 522"),
    "just-past": ([ids([1, TINY_VOCAB])], f"holds token id {TINY_VOCAB}; this model's vocabulary has ids 0 to 522"),
    "negative": ([ids([1, -5])], "holds the negative token id -5"),
    "mask-shape": ([ids([1, 2]), ids([1, 1, 1], name="attention_mask")],
                   "Expected input 'attention_mask' to have the shape of 'input_ids' [1, 2] but got [1, 3]"),
    "mask-rows": ([ids([1, 2], [3, 4]), ids([1, 1], name="attention_mask")],
                  "Expected input 'attention_mask' to have the shape of 'input_ids' [2, 2] but got [1, 2]"),
    "mask-values": ([ids([1, 2]), ids([1, 7], name="attention_mask")], "'attention_mask' holds 7"),
}


@pytest.mark.parametrize("which", ["recorded", "read-from-the-tokenizer"])
def test_bad_token_tensors_are_400s_and_good_ones_pass(tiny_clip_bundle, bundle_before_vocab, which):
    bundle = tiny_clip_bundle if which == "recorded" else bundle_before_vocab
    name = Bundle.load(bundle).manifest.name
    with running_server(bundle, precision="int8") as url:
        infer = f"{url}/v2/models/{name}/infer"
        for case, (inputs, words) in CASES.items():
            response = httpx.post(infer, json={"inputs": inputs})
            assert response.status_code == 400, (case, response.text)
            assert words in response.json()["error"], case
            assert "Fix:" in response.json()["error"]
        edge = httpx.post(infer, json={"inputs": [ids([0, TINY_VOCAB - 1]), ids([1, 0], name="attention_mask")]})
        assert edge.status_code == 200, edge.text
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
