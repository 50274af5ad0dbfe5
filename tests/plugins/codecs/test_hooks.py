"""The payload plugins through the plugin manager."""

from __future__ import annotations

import json

import pytest

from mmship.core.manager import get_plugin_manager, reset_plugin_manager
from mmship.core.payload import DecodedRequest, EncodedRequest, PayloadInputs


def test_builtin_payload_plugins_load():
    records = get_plugin_manager().records
    for name in ("codec-v2", "codec-embed"):
        assert records[name].status == "loaded", records[name].error
    assert records["codec-v2"].hooks == ["mmship_decode_payload", "mmship_encode_payload"]
    assert records["codec-embed"].hooks == ["mmship_encode_payload"]


@pytest.mark.parametrize(("protocol", "path"), [("v2", "/v2/models/m/infer"), ("v2-binary", "/v2/models/m/infer"), ("embed", "/embed")])
def test_encode_hook_dispatches_by_protocol(protocol, path):
    encoded = get_plugin_manager().hook.mmship_encode_payload(inputs=PayloadInputs(texts=["a"], model="m"), protocol=protocol)
    assert isinstance(encoded, EncodedRequest) and encoded.path == path
    assert ("inference-header-content-length" in encoded.headers) == (protocol == "v2-binary")


def test_classify_through_the_hook(png):
    inputs = PayloadInputs(images=[png], options={"labels": ["a", "b"]})
    encoded = get_plugin_manager().hook.mmship_encode_payload(inputs=inputs, protocol="classify")
    assert encoded.path == "/classify" and json.loads(encoded.body)["template"] == "a photo of a {}"


def test_unknown_protocols_are_declined():
    hook = get_plugin_manager().hook
    assert hook.mmship_encode_payload(inputs=PayloadInputs(texts=["a"]), protocol="grpc") is None
    assert hook.mmship_decode_payload(body=b"{}", headers={}, protocol="embed") is None


def test_decode_hook():
    body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]}).encode()
    decoded = get_plugin_manager().hook.mmship_decode_payload(body=body, headers={}, protocol="v2")
    assert isinstance(decoded, DecodedRequest) and decoded.inputs.texts == ["hi"]


def test_payload_plugins_can_be_disabled(monkeypatch):
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGINS", "codec-v2")
    reset_plugin_manager()
    manager = get_plugin_manager()
    assert manager.records["codec-v2"].status == "disabled"
    assert manager.hook.mmship_encode_payload(inputs=PayloadInputs(texts=["a"]), protocol="v2") is None
