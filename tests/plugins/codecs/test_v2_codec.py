"""The v2 codec round trips: client encode -> server decode, server encode -> client
decode, JSON and binary, every datatype."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from mmship.core.errors import InputSpecError, MmshipError
from mmship.core.payload import PayloadInputs
from mmship.payload.datatypes import NUMPY_DTYPES
from mmship.plugins.codecs.v2 import (
    binary_selection,
    decode_v2_request,
    decode_v2_response,
    encode_v2_request,
    encode_v2_response,
)

JSON_DATATYPES = sorted(d for d in NUMPY_DTYPES if d != "FP16")


def sample(datatype: str, shape=(2, 3)) -> np.ndarray:
    dtype = NUMPY_DTYPES[datatype]
    count = int(np.prod(shape))
    if datatype == "BOOL":
        values = np.arange(count) % 2 == 0
    elif dtype.kind == "f":
        values = np.linspace(-1.5, 2.25, count)
    elif dtype.kind == "i":
        info = np.iinfo(dtype)
        values = np.linspace(info.min, info.max, count).round().astype(np.float64)
        values = np.array([int(info.min)] + [int(v) for v in values[1:-1]] + [int(info.max)], dtype=object)
    else:
        values = np.array([0] + [int(np.iinfo(dtype).max)] * (count - 1), dtype=object)
    return np.asarray(values).astype(dtype).reshape(shape)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", sorted(NUMPY_DTYPES))
def test_request_tensors_round_trip(datatype, binary):
    array = sample(datatype)
    if datatype == "FP16" and not binary:
        with pytest.raises(InputSpecError, match="FP16, which travels only as binary data"):
            encode_v2_request(PayloadInputs(tensors={"x": array}, model="m"), binary=False)
        return
    encoded = encode_v2_request(PayloadInputs(tensors={"x": array}, model="m"), binary=binary)
    decoded = decode_v2_request(encoded.body, encoded.headers)
    back = decoded.inputs.tensors["x"]
    assert back.dtype == NUMPY_DTYPES[datatype] and back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_request_images_and_texts_round_trip(jpeg, png, binary):
    inputs = PayloadInputs(images=[jpeg, png], texts=["a photo of a cat", "ünïcødé ✓"], model="clip")
    encoded = encode_v2_request(inputs, binary=binary)
    assert encoded.method == "POST" and encoded.path == "/v2/models/clip/infer"
    decoded = decode_v2_request(encoded.body, encoded.headers)
    assert decoded.inputs.images == [jpeg, png]
    assert decoded.inputs.texts == ["a photo of a cat", "ünïcødé ✓"]
    assert decoded.inputs.tensors == {}


def test_binary_request_layout(jpeg):
    encoded = encode_v2_request(PayloadInputs(images=[jpeg], texts=["hi"], model="m"), binary=True)
    length = int(encoded.headers["inference-header-content-length"])
    header = json.loads(encoded.body[:length])
    assert header["parameters"] == {"binary_data_output": True}
    assert [(i["name"], i["datatype"], i["shape"]) for i in header["inputs"]] == [("image", "BYTES", [1]), ("text", "BYTES", [1])]
    sizes = [i["parameters"]["binary_data_size"] for i in header["inputs"]]
    assert sizes == [4 + len(jpeg), 4 + 2]
    assert len(encoded.body) == length + sum(sizes)
    assert encoded.headers["content-type"] == "application/octet-stream"


def test_json_request_marks_images_base64(jpeg):
    encoded = encode_v2_request(PayloadInputs(images=[jpeg], model="m"), binary=False)
    entry = json.loads(encoded.body)["inputs"][0]
    assert entry["parameters"] == {"content_type": "base64"}
    assert base64.b64decode(entry["data"][0]) == jpeg


def test_request_options_outputs_id_version():
    inputs = PayloadInputs(
        texts=["x"], model="my model",
        options={"outputs": ["text_embeds"], "request_id": "r-7", "version": "2", "parameters": {"priority": 1}},
    )
    encoded = encode_v2_request(inputs, binary=True)
    assert encoded.path == "/v2/models/my%20model/versions/2/infer"
    decoded = decode_v2_request(encoded.body, encoded.headers)
    assert decoded.request_id == "r-7"
    assert decoded.requested_outputs == ["text_embeds"]
    assert decoded.binary_outputs is True and binary_selection(decoded) == {"text_embeds"}
    assert decoded.inputs.options["parameters"] == {"priority": 1}


def test_nested_and_flat_data_are_both_row_major():
    flat = {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}]}
    nested = {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3], "data": [[1, 2, 3], [4, 5, 6]]}]}
    a = decode_v2_request(json.dumps(flat).encode(), {}).inputs.tensors["input_ids"]
    b = decode_v2_request(json.dumps(nested).encode(), {}).inputs.tensors["input_ids"]
    np.testing.assert_array_equal(a, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(a, b)


def test_images_as_data_uris_and_unmarked_base64(jpeg, png):
    body = {
        "inputs": [{
            "name": "image", "datatype": "BYTES", "shape": [2],
            "data": ["data:image/jpeg;base64," + base64.b64encode(jpeg).decode(), base64.b64encode(png).decode()],
        }]
    }
    assert decode_v2_request(json.dumps(body).encode(), {}).inputs.images == [jpeg, png]


def test_text_as_base64_content_type():
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode("é".encode()).decode()],
                        "parameters": {"content_type": "base64"}}]}
    assert decode_v2_request(json.dumps(body).encode(), {}).inputs.texts == ["é"]


def test_requested_outputs_binary_flags():
    body = {
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
        "outputs": [{"name": "text_embeds", "parameters": {"binary_data": True}}, {"name": "other"}],
    }
    decoded = decode_v2_request(json.dumps(body).encode(), {})
    assert decoded.requested_outputs == ["text_embeds", "other"]
    assert binary_selection(decoded) == {"text_embeds"}
    body.pop("outputs")
    decoded = decode_v2_request(json.dumps(body).encode(), {})
    assert decoded.requested_outputs == [] and decoded.binary_outputs is False and binary_selection(decoded) is False
    body["parameters"] = {"binary_data_output": True}
    assert binary_selection(decode_v2_request(json.dumps(body).encode(), {})) is True


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", sorted(NUMPY_DTYPES))
def test_response_round_trip_every_datatype(datatype, binary):
    array = sample(datatype, (3, 2))
    body, headers = encode_v2_response("clip", "1", "req-1", {"y": array}, binary)
    outputs = decode_v2_response(body, headers)
    expected = array.astype(np.float32) if datatype == "FP16" and not binary else array
    assert outputs["y"].dtype == expected.dtype
    np.testing.assert_array_equal(outputs["y"], expected)


def test_response_bytes_outputs_json_and_binary():
    array = np.array([b"caf\xc3\xa9", b"\xff\x00"], dtype=object)
    for binary in (False, True):
        body, headers = encode_v2_response("m", "1", None, {"b": array}, binary)
        assert decode_v2_response(body, headers)["b"].tolist() == [b"caf\xc3\xa9", b"\xff\x00"]


def test_response_document_shape():
    body, headers = encode_v2_response(
        "clip", "1", "abc", {"image_embeds": np.ones((1, 2), np.float32), "text_embeds": np.zeros((2, 2), np.float32)},
        {"text_embeds"}, parameters={"truncated": [True, False]},
    )
    length = int(headers["inference-header-content-length"])
    doc = json.loads(body[:length])
    assert doc["model_name"] == "clip" and doc["model_version"] == "1" and doc["id"] == "abc"
    assert doc["parameters"] == {"truncated": [True, False]}
    assert doc["outputs"][0] == {"name": "image_embeds", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 1.0]}
    assert doc["outputs"][1]["parameters"] == {"binary_data_size": 16}
    assert len(body) == length + 16


def test_json_response_has_no_header_length():
    body, headers = encode_v2_response("m", "1", None, {"y": np.ones(2, np.float32)}, False)
    assert headers == {"content-type": "application/json"}
    assert "id" not in json.loads(body)


def test_response_error_body_raises_the_server_message():
    with pytest.raises(MmshipError, match="input 'x' is bad. Fix: send it right"):
        decode_v2_response(json.dumps({"error": "input 'x' is bad. Fix: send it right"}).encode(), {})


def test_malformed_response():
    with pytest.raises(MmshipError, match="malformed Open Inference Protocol v2 response: the body has no 'outputs' list"):
        decode_v2_response(b'{"model_name": "m"}', {})
    body, headers = encode_v2_response("m", "1", None, {"y": np.ones(4, np.float32)}, True)
    with pytest.raises(MmshipError, match="truncated body"):
        decode_v2_response(body[:-3], headers)
