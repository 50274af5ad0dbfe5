"""The OpenAI codec on its own: every input convention decodes to the same ordered items,
malformed bodies name the field, both directions round-trip, base64 is little-endian
float32, errors are OpenAI's object."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from mmship.core.errors import MmshipError, RequestFieldError
from mmship.core.payload import EmbedItem, ItemEmbeddings, ModelCard, PayloadInputs
from mmship.plugins.codecs.openai import OpenAIEmbeddingsCodec

JSON = {"content-type": "application/json"}


def decode(doc: dict):
    return OpenAIEmbeddingsCodec().decode_request(json.dumps(doc).encode(), JSON)


def items(doc: dict) -> list[tuple[str, object]]:
    return [(i.kind, i.value) for i in decode(doc).inputs.items]


def test_every_convention_decodes_to_ordered_items(jpeg, png):
    jpeg_uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    png_b64 = base64.b64encode(png).decode()
    assert items({"input": "a cat"}) == [("text", "a cat")]
    assert items({"input": ["a", "b"]}) == [("text", "a"), ("text", "b")]
    assert items({"input": [1, 2, 3]}) == [("tokens", [1, 2, 3])]
    assert items({"input": [[1, 2], [3]]}) == [("tokens", [1, 2]), ("tokens", [3])]
    assert items({"input": [jpeg_uri, "https://h.example/c.jpg"], "modality": "image"}) == [
        ("image", jpeg), ("image_url", "https://h.example/c.jpg"),
    ]
    assert items({"input": [{"text": "a"}, {"image": png_b64}, {"image": "http://h.example/x.png"}]}) == [
        ("text", "a"), ("image", png), ("image_url", "http://h.example/x.png"),
    ]
    image_part = {"type": "image_url", "image_url": {"url": jpeg_uri}}
    assert items({"messages": [{"role": "user", "content": [image_part]}]}) == [("image", jpeg)]
    assert items({"messages": [{"role": "user", "content": "a cat"}]}) == [("text", "a cat")]


def test_options_and_model():
    decoded = decode({"model": "clip", "input": "a", "dimensions": 8, "encoding_format": "base64", "user": "u-1"})
    assert decoded.inputs.model == "clip"
    assert decoded.inputs.options == {"encoding_format": "base64", "dimensions": 8}
    assert decode({"input": "a"}).inputs.model == PayloadInputs().model


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ({}, "input", "no input"),
        ({"input": []}, "input", "empty list"),
        ({"input": "a", "messages": []}, "messages", "both input and messages"),
        ({"input": [{"text": "a", "image": "x"}]}, "input", "both a text and an image"),
        ({"input": [{"audio": "x"}]}, "input", "'text' or 'image'"),
        ({"input": ["a", 3.5]}, "input", "input[1] is a float"),
        ({"input": [[1, "2"]]}, "input", "input[0] is a list"),
        ({"input": [1, 2], "modality": "image"}, "input", "with modality 'image'"),
        ({"input": ["bm90IGFuIGltYWdl"], "modality": "image"}, "input", "not an encoded image"),
        ({"input": ["file:///etc/passwd"], "modality": "image"}, "input", "URL"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%%"}}]}]}, "messages", "base64"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages", "type 'input_audio'"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}, "messages", "2 text/image parts"),
        ({"input": "a", "dimensions": 0}, "dimensions", "greater than 0"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
        ({"input": "a", "inputs": "typo"}, "inputs", "Extra inputs"),
    ],
)
def test_malformed_bodies_name_the_field(doc, field, words):
    with pytest.raises(MmshipError) as info:
        decode(doc)
    assert words in info.value.message, info.value.message
    assert getattr(info.value, "field", None) == field


def test_both_directions_round_trip(jpeg):
    codec = OpenAIEmbeddingsCodec()
    inputs = PayloadInputs(items=[EmbedItem.text("a cat"), EmbedItem.image(jpeg)], model="clip", options={"dimensions": 4})
    encoded = codec.encode_request(inputs, "openai")
    assert encoded.path == "/v1/embeddings" and json.loads(encoded.body)["encoding_format"] == "base64"
    decoded = codec.decode_request(encoded.body, encoded.headers)
    assert [(i.kind, i.value) for i in decoded.inputs.items] == [("text", "a cat"), ("image", jpeg)]
    assert decoded.inputs.model == "clip" and decoded.inputs.options["dimensions"] == 4
    rows = np.array([[0.6, -0.8, 0.0, 1e-8], [1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    answer = ItemEmbeddings(model="clip", embeddings=rows, prompt_tokens=5)
    response = codec.encode_response(answer, decoded)
    body = json.loads(response.body)
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5} and body["object"] == "list"
    assert np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4").tolist() == rows[0].tolist()
    back = codec.decode_response(response.body, response.headers)
    np.testing.assert_array_equal(back.embeddings, rows)
    assert back.prompt_tokens == 5 and back.model == "clip"
    floats = json.loads(codec.encode_response(answer, decode({"input": "a"})).body)
    assert floats["data"][1]["embedding"] == [1.0, 0.0, 0.0, 0.0]


def test_texts_only_travel_as_plain_strings():
    doc = json.loads(OpenAIEmbeddingsCodec().encode_request(PayloadInputs(texts=["a", "b"]), "openai").body)
    assert doc["input"] == ["a", "b"] and "model" not in doc


def test_errors_are_openais_object():
    codec = OpenAIEmbeddingsCodec()
    error = RequestFieldError("bad", field="dimensions", code="x")
    assert json.loads(codec.encode_error(400, "bad. Fix: this", error).body) == {
        "error": {"message": "bad. Fix: this", "type": "invalid_request_error", "param": "dimensions", "code": "x"}
    }
    assert json.loads(codec.encode_error(503, "busy", None).body)["error"]["type"] == "server_error"
    with pytest.raises(MmshipError, match="no such model"):
        codec.decode_response(json.dumps({"error": {"message": "no such model", "type": "x"}}).encode(), {})


def test_model_list():
    card = ModelCard(name="clip", created=7, dimensions=512, modalities=["image", "text"])
    listed = json.loads(OpenAIEmbeddingsCodec().encode_models([card]).body)
    assert listed["object"] == "list" and listed["data"][0]["id"] == "clip" and listed["data"][0]["object"] == "model"
    assert json.loads(OpenAIEmbeddingsCodec().encode_models([card], one=True).body)["dimensions"] == 512
