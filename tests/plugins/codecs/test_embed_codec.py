"""The /embed and /classify codec."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import PayloadInputs
from mmship.plugins.codecs.embed import (
    decode_classify_response,
    decode_embed_response,
    encode_classify_request,
    encode_embed_request,
)


def test_embed_request(jpeg):
    encoded = encode_embed_request(PayloadInputs(images=[jpeg], texts=["a cat"], options={"normalize": False}))
    assert (encoded.method, encoded.path, encoded.headers) == ("POST", "/embed", {"content-type": "application/json"})
    doc = json.loads(encoded.body)
    assert base64.b64decode(doc["images"][0]) == jpeg
    assert doc["texts"] == ["a cat"] and doc["normalize"] is False


def test_embed_request_defaults_to_normalize_and_refuses_tensors_and_nothing(jpeg):
    assert json.loads(encode_embed_request(PayloadInputs(texts=["x"])).body)["normalize"] is True
    with pytest.raises(InputSpecError, match="not raw tensors"):
        encode_embed_request(PayloadInputs(tensors={"input_ids": np.ones((1, 2))}))
    with pytest.raises(InputSpecError, match="nothing to embed"):
        encode_embed_request(PayloadInputs())


def test_embed_request_refuses_raw_pixels():
    with pytest.raises(InputSpecError, match="image 0 is not an encoded image"):
        encode_embed_request(PayloadInputs(images=[b"\x00" * 300]))


def test_classify_request(png):
    doc = json.loads(encode_classify_request(png, ["cat", "dog"], "a picture of a {}").body)
    assert base64.b64decode(doc["image"]) == png
    assert doc["labels"] == ["cat", "dog"] and doc["template"] == "a picture of a {}"
    with pytest.raises(InputSpecError, match="has no '{}'"):
        encode_classify_request(png, ["cat"], "a photo")
    with pytest.raises(InputSpecError, match="at least one label"):
        encode_classify_request(png, [])


def test_decode_embed_response():
    body = json.dumps({"model": "clip", "dim": 2, "image_embeds": [[1, 0]], "text_embeds": [[0, 1], [1, 0]],
                       "truncated": [False, True]}).encode()
    result = decode_embed_response(body)
    assert result.model == "clip" and result.dim == 2 and result.truncated == [False, True]
    assert result.image_embeds.shape == (1, 2) and result.image_embeds.dtype == np.float32
    assert result.text_embeds.shape == (2, 2)
    assert set(result.arrays()) == {"image_embeds", "text_embeds"}


def test_decode_embed_response_texts_only_and_other_embeds():
    result = decode_embed_response(json.dumps({"model": "f", "embeds": {"fused": [[1, 2, 3]]}}).encode())
    assert result.image_embeds is None and result.dim == 3 and result.arrays()["fused"].shape == (1, 3)


def test_decode_classify_response():
    body = json.dumps({"model": "clip", "labels": ["cat", "dog"], "probs": [0.9, 0.1], "top": "cat"}).encode()
    result = decode_classify_response(body)
    assert result.top == "cat" and result.ranked() == [("cat", 0.9), ("dog", 0.1)]


def test_error_bodies_raise_the_server_message():
    with pytest.raises(MmshipError, match="images\\[0\\] is not valid base64"):
        decode_embed_response(b'{"error": "images[0] is not valid base64"}')
    with pytest.raises(MmshipError, match="malformed /classify response: 2 labels but 1 probabilities"):
        decode_classify_response(b'{"labels": ["a", "b"], "probs": [1.0]}')
    with pytest.raises(MmshipError, match="malformed /embed response"):
        decode_embed_response(b"<html>")


@pytest.mark.parametrize("template", ["{} {x}", "{} {1}", "a {} and a {}", "{{}}{0:>2000000000}", "no slot"])
def test_classify_request_refuses_what_the_server_would_refuse(jpeg, template):
    """The client checks the template with the server's rule before sending anything."""
    with pytest.raises(InputSpecError, match="template"):
        encode_classify_request(jpeg, ["cat"], template)
