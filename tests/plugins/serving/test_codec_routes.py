"""The server mounts every registered codec on its routes: a third-party protocol is
served and spoken by the client end to end; the built-in routes keep their answers."""

from __future__ import annotations

import base64
import json
from typing import ClassVar

import httpx
import numpy as np
import pytest

import mmship
from mmship.client import Client
from mmship.core.bundle import Bundle
from mmship.core.codec import Codec, Operation
from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.manager import get_plugin_manager
from mmship.core.payload import (
    DecodedRequest,
    EncodedRequest,
    EncodedResponse,
    InferOutputs,
    PayloadInputs,
)
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

TINY_TYPE = "application/x-tiny+json"


class TinyJsonCodec(Codec[InferOutputs]):
    """A made-up protocol on its own route: hex-encoded images and texts in,
    ``{"tensors": {name: [shape, flat values]}}`` out, its own content type both ways."""

    name = "tiny-json"
    operation: ClassVar[Operation] = "infer"
    routes = ("/tiny/{model}",)
    decoded: ClassVar[list[DecodedRequest]] = []

    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        doc = {"hex_images": [b.hex() for b in inputs.images], "texts": inputs.texts, "want": inputs.options.get("outputs", [])}
        return EncodedRequest("POST", f"/tiny/{inputs.model}", json.dumps(doc).encode(), {"content-type": TINY_TYPE})

    def decode_request(self, body: bytes, headers) -> DecodedRequest:
        if headers.get("content-type") != TINY_TYPE:
            raise InputSpecError(f"tiny-json wants content type {TINY_TYPE}, got {headers.get('content-type')!r}", hint="use the tiny client")
        doc = json.loads(body)
        inputs = PayloadInputs(images=[bytes.fromhex(h) for h in doc["hex_images"]], texts=list(doc["texts"]))
        decoded = DecodedRequest(inputs=inputs, requested_outputs=list(doc["want"]))
        TinyJsonCodec.decoded.append(decoded)
        return decoded

    def encode_response(self, answer: InferOutputs, request: DecodedRequest) -> EncodedResponse:
        tensors = {k: [list(v.shape), v.ravel().tolist()] for k, v in answer.outputs.items()}
        doc = {"model": answer.model, "tensors": tensors, "cut": answer.truncated}
        return EncodedResponse(json.dumps(doc).encode(), {"content-type": TINY_TYPE})

    def decode_response(self, body: bytes, headers) -> InferOutputs:
        if headers.get("content-type") != TINY_TYPE:
            raise MmshipError(f"not a tiny-json answer: {headers.get('content-type')!r}")
        doc = json.loads(body)
        outputs = {k: np.array(values, dtype=np.float32).reshape(shape) for k, (shape, values) in doc["tensors"].items()}
        return InferOutputs(model=doc["model"], outputs=outputs, truncated=doc["cut"])


class TinyPlugin:
    @mmship.hookimpl
    def mmship_register_codecs(self, register):
        register(TinyJsonCodec)


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    """A server started while the tiny-json plugin is registered."""
    get_plugin_manager().register(TinyPlugin(), name="tiny-codec")
    with running_server(tiny_clip_bundle, precision="fp32", max_delay_ms=5) as url:
        yield url


@pytest.fixture
def tiny_protocol():
    """The tiny-json plugin registered on the client's side too."""
    get_plugin_manager().register(TinyPlugin(), name="tiny-codec")


@pytest.fixture(scope="module")
def model(tiny_clip_bundle):
    return Bundle.load(tiny_clip_bundle).manifest.name


@pytest.fixture(scope="module")
def cat() -> bytes:
    from importlib.resources import files

    return files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()


def test_a_third_party_codec_is_served_on_its_route_and_spoken_by_the_client(server, tiny_protocol, model, cat):
    TinyJsonCodec.decoded.clear()
    with Client(server) as client:
        tiny = client.infer(images=[cat], texts=["a photo of a cat", "a dog"], protocol="tiny-json")
        reference = client.infer(images=[cat], texts=["a photo of a cat", "a dog"], protocol="v2-binary")
        picked = client.call(PayloadInputs(texts=["a dog"], options={"outputs": ["text_embeds"]}), "tiny-json")
        assert "tiny-json" in client.protocols()
    assert len(TinyJsonCodec.decoded) == 2, "the server decoded both tiny requests with the plugin's codec"
    assert TinyJsonCodec.decoded[0].inputs.images == [cat]
    assert set(tiny) == set(reference) == {"image_embeds", "text_embeds", "logits_per_image"}
    for name in reference:
        np.testing.assert_array_equal(tiny[name], reference[name])
    assert isinstance(picked, InferOutputs) and picked.model == model and list(picked.outputs) == ["text_embeds"]
    assert "/tiny/{model}" in httpx.get(f"{server}/openapi.json").json()["paths"]


def test_a_third_party_route_checks_the_model_and_refuses_bad_requests_with_400(server, model):
    wrong = httpx.post(f"{server}/tiny/nope", content=b"{}", headers={"content-type": TINY_TYPE})
    assert wrong.status_code == 404 and f"this server serves {model!r}" in wrong.json()["error"]
    plain = httpx.post(f"{server}/tiny/{model}", json={"texts": ["x"]})
    assert plain.status_code == 400
    assert plain.json()["error"] == f"tiny-json wants content type {TINY_TYPE}, got 'application/json'. Fix: use the tiny client"
    assert httpx.post(f"{server}/embed", json={"texts": ["still fine"]}).status_code == 200


# --- the built-in routes answer as they did before codecs were a registry ------------

FIX = ". Fix: see /docs for the request schema"

#: (route, body, content type) -> the exact 400 message the server gave before.
REFUSED = {
    "embed-bad-json": ("/embed", b'{"texts": [', "application/json", "invalid request body: 11: JSON decode error" + FIX),
    "embed-empty": ("/embed", b"", "application/json", "invalid request body: body: Field required" + FIX),
    "embed-form": ("/embed", b'{"texts": ["a"]}', "application/x-www-form-urlencoded",
                   "invalid request body: body: Input should be a valid dictionary or object to extract fields from" + FIX),
    "embed-list": ("/embed", b"[1, 2]", "application/json",
                   "invalid request body: body: Input should be a valid dictionary or object to extract fields from" + FIX),
    "embed-types": ("/embed", b'{"texts": [1, "a"], "images": "x", "normalize": "maybe"}', "application/json",
                    "invalid request body: images: Input should be a valid list; texts.0: Input should be a valid string; "
                    "normalize: Input should be a valid boolean, unable to interpret input" + FIX),
    "embed-extra": ("/embed", b'{"texts": ["a"], "foo": 1}', "application/json", "invalid request body: foo: Extra inputs are not permitted" + FIX),
    "embed-nothing": ("/embed", b"{}", "application/json", "the request has no inputs. Fix: send at least one image or text"),
    "classify-no-labels": ("/classify", b'{"image": "AAAA", "labels": []}', "application/json",
                           "invalid request body: labels: List should have at least 1 item after validation, not 0" + FIX),
    # (changed with /classify's "images" list: the message names both ways to send images)
    "classify-no-image": ("/classify", b'{"labels": ["a"]}', "application/json",
                          "/classify takes either 'image' (one image) or 'images' (a list of images), got neither. "
                          'Fix: send "image": "<base64>" for one image, or "images": ["<base64>", ...] for one result per image'),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_people_routes_refuse_bad_bodies_with_the_same_messages(server, case):
    route, body, content_type, message = REFUSED[case]
    response = httpx.post(f"{server}{route}", content=body, headers={"content-type": content_type})
    assert response.status_code == 400 and response.json() == {"error": message}


def test_people_routes_take_json_subtypes_and_only_post(server):
    assert httpx.post(f"{server}/embed", content=b'{"texts": ["a"]}', headers={"content-type": "application/ld+json"}).status_code == 200
    assert httpx.get(f"{server}/embed").status_code == 405


def _b64(cat: bytes) -> str:
    return base64.b64encode(cat).decode()


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("no braces", "has no '{}' for the label"),
        ("a {} of {kind}", "exactly one '{}'"),
        ("a {} {0} {", "exactly one '{}'"),
        ("a {} and a {}", "exactly one '{}'"),
        ("{{}}{:>999999999}", "exactly one '{}'"),  # a gigabyte per label if it were formatted
        ("{{}}{0:>2000000000}", "exactly one '{}'"),  # two gigabytes per label
        ("{0.__class__.__mro__}{{}}", "exactly one '{}'"),  # would echo Python internals
        ("{} {1}", "exactly one '{}'"),
        ("a {{photo}} of {}", "no other brace"),  # format() escapes are not a template feature
    ],
    ids=["none", "named", "malformed", "two", "huge-width", "huge-index", "attribute", "index", "escaped"],
)
def test_a_bad_template_is_a_400_never_a_server_error(server, cat, template, words):
    response = httpx.post(f"{server}/classify", json={"image": _b64(cat), "labels": ["cat", "dog"], "template": template})
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert httpx.post(f"{server}/classify", json={"image": _b64(cat), "labels": ["cat"]}).status_code == 200


def test_labels_go_into_the_template_verbatim(server, cat):
    """str.replace, not format(): braces in a label are text, never evaluated."""
    from mmship.serving.app import label_prompts

    assert label_prompts("a photo of a {}", ["{0.__class__}", "{}", "x{:>9}"]) == [
        "a photo of a {0.__class__}", "a photo of a {}", "a photo of a x{:>9}",
    ]
    response = httpx.post(f"{server}/classify", json={"image": _b64(cat), "labels": ["{0.__class__.__mro__}", "{:>999999999}"]})
    assert response.status_code == 200, response.text
    assert response.json()["labels"] == ["{0.__class__.__mro__}", "{:>999999999}"]
