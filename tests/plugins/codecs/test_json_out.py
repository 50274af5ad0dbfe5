"""dump_json: the values json.dumps writes (parsed back bit for bit), fast; non-finite values refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmship.payload.json_out import dump_json


def _reference(doc):
    def listed(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, dict):
            return {k: listed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [listed(v) for v in value]
        return value

    return json.dumps(listed(doc), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def test_same_document_as_json_for_embeddings():
    rng = np.random.default_rng(0)
    embeds = rng.standard_normal((3, 512)).astype(np.float32)
    embeds /= np.linalg.norm(embeds, axis=1, keepdims=True)
    doc = {
        "model": "clïp ✓", "dim": 512, "image_embeds": embeds.astype(np.float64), "text_embeds": None,
        "embeds": {"fused": embeds[:1].astype(np.float64)}, "truncated": [True, False],
    }
    # Every float parses back to the same float64 (the digits may be written differently:
    # 0.0000967 instead of 9.67e-05).
    assert json.loads(dump_json(doc)) == json.loads(_reference(doc))
    assert json.loads(dump_json(doc))["image_embeds"] == embeds.astype(float).tolist()
    assert dump_json(doc).startswith(b'{"model":"cl\xc3\xafp \xe2\x9c\x93","dim":512,"image_embeds":[[')


def test_parsed_values_are_the_float32_values_exactly():
    values = np.array([[1e-05, 0.1, -3.4028235e38, 1.0, 0.0]], dtype=np.float32).astype(np.float64)
    assert json.loads(dump_json({"v": values}))["v"] == values.tolist()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    array = np.ones((2, 4), dtype=np.float64)
    array[1, 2] = bad
    with pytest.raises(ValueError, match="JSON"):
        dump_json({"data": [{"embedding": array}]})
    with pytest.raises(ValueError, match="JSON"):
        dump_json({"score": float(bad)})
