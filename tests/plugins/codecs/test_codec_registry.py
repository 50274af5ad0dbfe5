"""The codec registry through the plugin manager: the built-in codecs, dispatch by
protocol, both directions of every codec, and what a broken codec plugin gets."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mmship
from mmship.core.codec import Codec
from mmship.core.errors import PluginError
from mmship.core.manager import get_plugin_manager, reset_plugin_manager
from mmship.core.payload import (
    ClassifyResult,
    DecodedRequest,
    EmbedResult,
    EncodedRequest,
    EncodedResponse,
    ImageScores,
    InferOutputs,
    PayloadInputs,
    RankedCandidate,
    RankResult,
)


def test_builtin_codecs_are_registered_by_their_plugins():
    manager = get_plugin_manager()
    for name in ("codec-v2", "codec-embed", "codec-openai", "codec-rank"):
        assert manager.records[name].status == "loaded", manager.records[name].error
        assert manager.records[name].hooks == ["mmship_register_codecs"]
    codecs = manager.codecs()
    assert codecs.names() == ["classify", "embed", "openai", "rank", "v2"]
    assert {n: codecs.owner(n) for n in codecs.names()} == {
        "classify": "codec-embed", "embed": "codec-embed", "openai": "codec-openai", "rank": "codec-rank", "v2": "codec-v2",
    }
    assert codecs.protocols() == ["classify", "embed", "openai", "rank", "v2", "v2-binary"]
    assert {n: codecs.get(n).operation for n in codecs.names()} == {
        "classify": "classify", "embed": "embed", "openai": "embed_items", "rank": "rank", "v2": "infer",
    }


@pytest.mark.parametrize(
    ("protocol", "path"),
    [("v2", "/v2/models/m/infer"), ("v2-binary", "/v2/models/m/infer"), ("embed", "/embed")],
)
def test_encode_dispatches_by_protocol(protocol, path):
    codec = get_plugin_manager().codecs().for_protocol(protocol)()
    encoded = codec.encode_request(PayloadInputs(texts=["a"], model="m"), protocol)
    assert isinstance(encoded, EncodedRequest) and encoded.path == path
    assert ("inference-header-content-length" in encoded.headers) == (protocol == "v2-binary")


def test_classify_through_the_registry(png):
    codec = get_plugin_manager().codecs().for_protocol("classify")()
    encoded = codec.encode_request(PayloadInputs(images=[png], options={"labels": ["a", "b"]}), "classify")
    assert encoded.path == "/classify" and json.loads(encoded.body)["template"] == "a photo of a {}"


def test_unknown_protocol_names_the_known_ones():
    with pytest.raises(PluginError) as info:
        get_plugin_manager().codecs().for_protocol("grpc")
    assert info.value.message == "no payload plugin encodes protocol 'grpc'"
    assert "classify, embed, openai, rank, v2, v2-binary" in info.value.hint


# --- both directions of every built-in codec ---------------------------------------


def _round_trip(protocol: str, inputs: PayloadInputs, answer):
    """client encode -> server decode; server encode -> client decode, by one codec."""
    codec = get_plugin_manager().codecs().for_protocol(protocol)()
    encoded = codec.encode_request(inputs, protocol)
    decoded = codec.decode_request(encoded.body, {k.lower(): v for k, v in encoded.headers.items()})
    assert isinstance(decoded, DecodedRequest)
    response = codec.encode_response(answer, decoded)
    assert isinstance(response, EncodedResponse) and response.status == 200
    return decoded, response, codec.decode_response(response.body, response.headers)


@pytest.mark.parametrize("protocol", ["v2", "v2-binary"])
def test_v2_codec_both_directions(protocol, jpeg):
    inputs = PayloadInputs(
        images=[jpeg], texts=["a cat", "ünïcødé"], tensors={"input_ids": np.arange(6, dtype=np.int64).reshape(2, 3)},
        model="clip", options={"outputs": ["text_embeds"], "request_id": "r-1"},
    )
    outputs = {"text_embeds": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)}
    decoded, response, back = _round_trip(protocol, inputs, InferOutputs("clip", outputs, truncated=[True, False]))
    assert decoded.inputs.images == [jpeg] and decoded.inputs.texts == ["a cat", "ünïcødé"]
    np.testing.assert_array_equal(decoded.inputs.tensors["input_ids"], inputs.tensors["input_ids"])
    assert decoded.requested_outputs == ["text_embeds"] and decoded.request_id == "r-1"
    assert ("inference-header-content-length" in response.headers) == (protocol == "v2-binary")
    assert isinstance(back, InferOutputs)
    assert (back.model, back.model_version, back.request_id, back.truncated) == ("clip", "1", "r-1", [True, False])
    np.testing.assert_array_equal(back.outputs["text_embeds"], outputs["text_embeds"])


def test_embed_codec_both_directions(jpeg, png):
    inputs = PayloadInputs(images=[jpeg, png], texts=["x"], options={"normalize": False})
    image = np.array([[0.1, -0.2], [0.3, 0.4]], dtype=np.float32)
    answer = EmbedResult("clip", 2, image_embeds=image, text_embeds=image[:1], embeds={"fused": image * 2}, truncated=[False])
    decoded, response, back = _round_trip("embed", inputs, answer)
    assert decoded.inputs.images == [jpeg, png] and decoded.inputs.texts == ["x"]
    assert decoded.inputs.options == {"normalize": False}
    assert response.headers == {"content-type": "application/json"}
    assert isinstance(back, EmbedResult) and (back.model, back.dim, back.truncated) == ("clip", 2, [False])
    for name, array in answer.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], array)


def test_classify_codec_both_directions(png):
    inputs = PayloadInputs(images=[png], options={"labels": ["cat", "dog"], "template": "an image of a {}"})
    answer = ClassifyResult(
        "clip", ["cat", "dog"], [0.75, 0.25], "cat", truncated=[False, False], scoring="softmax",
        results=[ImageScores([0.75, 0.25], "cat")],
    )
    decoded, response, back = _round_trip("classify", inputs, answer)
    assert decoded.inputs.images == [png]
    assert decoded.inputs.options == {"labels": ["cat", "dog"], "template": "an image of a {}", "templates": None, "image_list": False}
    assert "results" not in json.loads(response.body)  # one image: the single-image shape
    assert back == answer


def test_classify_codec_several_images_and_an_ensemble(png, jpeg):
    templates = ["a photo of a {}", "a drawing of a {}"]
    inputs = PayloadInputs(images=[png, jpeg], options={"labels": ["cat", "dog"], "templates": templates})
    answer = ClassifyResult(
        "clip", ["cat", "dog"], [0.75, 0.25], "cat", truncated=[False, True], scoring="sigmoid",
        results=[ImageScores([0.75, 0.25], "cat"), ImageScores([0.1, 0.6], "dog")],
    )
    decoded, response, back = _round_trip("classify", inputs, answer)
    assert decoded.inputs.images == [png, jpeg]
    assert decoded.inputs.options == {"labels": ["cat", "dog"], "template": None, "templates": templates, "image_list": True}
    body = json.loads(response.body)
    assert set(body) == {"model", "labels", "scoring", "results", "truncated"}
    assert body["results"] == [{"probs": [0.75, 0.25], "top": "cat"}, {"probs": [0.1, 0.6], "top": "dog"}]
    assert back == answer and back.ranked(1) == [("dog", 0.6), ("cat", 0.1)]


@pytest.mark.parametrize("query", ["image", "text"])
def test_rank_codec_both_directions(png, jpeg, query):
    if query == "image":
        inputs = PayloadInputs(images=[png], texts=["a cat", "a dog"], model="clip", options={"query": "image", "top_k": 1})
        results = [RankedCandidate(1, 0.31, 0.8, text="a dog")]
    else:
        inputs = PayloadInputs(images=[png, jpeg], texts=["a cat"], options={"query": "text", "top_k": None})
        results = [RankedCandidate(1, 0.31, 0.8), RankedCandidate(0, -0.1, 0.2)]
    answer = RankResult("clip", query, "softmax", results, candidates=2, truncated=[False] * (2 if query == "image" else 1))
    decoded, response, back = _round_trip("rank", inputs, answer)
    assert (decoded.inputs.images, decoded.inputs.texts) == (inputs.images, inputs.texts)
    assert decoded.inputs.options == inputs.options and decoded.inputs.model == inputs.model
    body = json.loads(response.body)
    assert ("text" in body["results"][0]) == (query == "image")  # a text only on text candidates
    assert back == answer


# --- broken codec plugins -----------------------------------------------------------


def _codec(
    name: str, routes: tuple[str, ...], operation: str = "infer", protocols: tuple[str, ...] = (), **optional: object
) -> type[Codec]:
    class Fixture(Codec):
        def encode_request(self, inputs, protocol):
            raise NotImplementedError

        def decode_response(self, body, headers):
            raise NotImplementedError

        def decode_request(self, body, headers):
            raise NotImplementedError

        def encode_response(self, answer, request):
            raise NotImplementedError

    Fixture.name, Fixture.routes, Fixture.operation, Fixture.protocols = name, routes, operation, protocols
    for key, value in optional.items():
        setattr(Fixture, key, value)
    return Fixture


def _plugin(*classes):
    class Plugin:
        @mmship.hookimpl
        def mmship_register_codecs(self, register):
            for cls in classes:
                register(cls)

    return Plugin()


@pytest.mark.parametrize(
    ("codec", "words"),
    [
        (_codec("mine", ("/v2/models/{name}/infer",)), ["route '/v2/models/{name}/infer'", "codec 'v2' of plugin 'codec-v2'"]),
        (_codec("mine", ("/mine",), protocols=("v2-binary",)), ["protocol 'v2-binary'", "codec 'v2' of plugin 'codec-v2'"]),
        (_codec("embed", ("/mine",)), ["codec name 'embed'", "already taken by plugin 'codec-embed'"]),
        (_codec("mine", ("/mine",), operation="translate"), ["operation 'translate'"]),
        (_codec("mine", ("mine",)), ["routes ('mine',)"]),
        (_codec("mine", ("/mine",), models_route="/v1/models"), ["models route '/v1/models'", "codec 'openai'"]),
        (_codec("mine", ("/mine",), error_prefix="/v1/x/"), ["error prefix '/v1/x/'", "codec 'openai'"]),
        (_codec("mine", ("/v1/mine",)), ["error prefix '/v1/'", "codec 'openai'"]),
        (_codec("mine", ("/mine",), error_prefix="/"), ["error_prefix '/'"]),
        (_codec("mine", ("/mine/a",), error_prefix="/v2/"), ["error prefix '/v2/'", "codec 'v2'"]),
    ],
    ids=["route", "protocol", "name", "operation", "path", "models-route", "error-prefix", "route-under-prefix",
         "prefix-root", "prefix-over-routes"],
)
def test_a_clashing_or_invalid_codec_fails_its_plugin_and_nothing_else(codec, words):
    manager = get_plugin_manager()
    manager.register(_plugin(_codec("fine", ("/fine",)), codec), name="broken-codecs")
    codecs = manager.codecs()
    record = manager.records["broken-codecs"]
    assert record.status == "failed"
    for word in words:
        assert word in record.error
    assert "fine" not in codecs and "mine" not in codecs, "a failed plugin's codecs are all dropped"
    assert codecs.names() == ["classify", "embed", "openai", "rank", "v2"] and codecs.owner("embed") == "codec-embed"
    assert manager.pm.get_plugin("broken-codecs") is None


def test_codec_plugins_can_be_disabled(monkeypatch):
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGINS", "codec-v2")
    reset_plugin_manager()
    manager = get_plugin_manager()
    assert manager.records["codec-v2"].status == "disabled"
    assert manager.codecs().names() == ["classify", "embed", "openai", "rank"]
    with pytest.raises(PluginError, match="no payload plugin encodes protocol 'v2'"):
        manager.codecs().for_protocol("v2")
