"""mmship decodes exactly what stock tritonclient sends, and tritonclient reads exactly
what mmship answers (requests built and responses parsed by tritonclient itself)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as httpclient  # noqa: E402
import tritonclient.utils as tritonutils  # noqa: E402

from mmship.core.errors import InputSpecError
from mmship.core.payload import PayloadInputs
from mmship.payload.binary import (
    deserialize_bytes_tensor,
    serialize_bytes_tensor,
)
from mmship.payload.datatypes import NUMPY_DTYPES
from mmship.plugins.codecs.v2 import (
    binary_selection,
    decode_v2_request,
    encode_v2_request,
    encode_v2_response,
)
from tests.plugins.codecs.test_v2_codec import sample


def triton_request(inputs, outputs=None, request_id=""):
    """Body and headers exactly as tritonclient's HTTP client would send them."""
    body, header_length = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs, request_id=request_id)
    headers = {"Content-Type": "application/octet-stream"}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = str(header_length)
    return body, headers


def triton_input(name, array, binary):
    datatype = tritonutils.np_to_triton_dtype(array.dtype)
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def test_bytes_serialization_matches_tritonclient(jpeg):
    items = [jpeg, b"", b"a photo of a cat", bytes(range(256))]
    theirs = tritonutils.serialize_byte_tensor(np.array(items, dtype=object)).item()
    assert serialize_bytes_tensor(items) == theirs
    assert deserialize_bytes_tensor(theirs, "x", count=4) == items
    assert tritonutils.deserialize_bytes_tensor(serialize_bytes_tensor(items)).tolist() == items


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", sorted(NUMPY_DTYPES))
def test_tritonclient_numeric_requests_decode_exactly(datatype, binary):
    array = sample(datatype, (2, 3))
    body, headers = triton_request([triton_input("x", array, binary)])
    if datatype == "FP16" and not binary:  # tritonclient writes it; the protocol allows FP16 only binary
        with pytest.raises(InputSpecError, match="FP16 in JSON; FP16 travels only as binary data"):
            decode_v2_request(body, headers)
        return
    decoded = decode_v2_request(body, headers)
    back = decoded.inputs.tensors["x"]
    assert back.dtype == NUMPY_DTYPES[datatype] and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_text_requests(binary):
    texts = np.array([b"a photo of a cat", "ünïcødé".encode()], dtype=object)
    body, headers = triton_request([triton_input("text", texts, binary)])
    assert decode_v2_request(body, headers).inputs.texts == ["a photo of a cat", "ünïcødé"]


def test_tritonclient_image_and_mixed_binary_json_inputs(jpeg, png):
    images = triton_input("image", np.array([jpeg, png], dtype=object), True)
    texts = triton_input("text", np.array([b"a cat"], dtype=object), False)
    ids = triton_input("input_ids", np.arange(8, dtype=np.int64).reshape(2, 4), True)
    mask = triton_input("attention_mask", np.ones((2, 4), dtype=np.int32), False)
    outputs = [httpclient.InferRequestedOutput("image_embeds"), httpclient.InferRequestedOutput("text_embeds", binary_data=False)]
    body, headers = triton_request([images, texts, ids, mask], outputs=outputs, request_id="req-42")
    decoded = decode_v2_request(body, headers)
    assert decoded.inputs.images == [jpeg, png]
    assert decoded.inputs.texts == ["a cat"]
    np.testing.assert_array_equal(decoded.inputs.tensors["input_ids"], np.arange(8).reshape(2, 4))
    assert decoded.inputs.tensors["attention_mask"].dtype == np.int32
    assert decoded.request_id == "req-42"
    assert decoded.requested_outputs == ["image_embeds", "text_embeds"]
    assert binary_selection(decoded) == {"image_embeds"}


def test_tritonclient_without_outputs_asks_for_all_binary():
    body, headers = triton_request([triton_input("text", np.array([b"x"], dtype=object), True)])
    decoded = decode_v2_request(body, headers)
    assert decoded.requested_outputs == [] and binary_selection(decoded) is True


def test_mmship_binary_request_matches_tritonclient_sections(jpeg):
    ours = encode_v2_request(PayloadInputs(images=[jpeg], texts=["a cat", "a dog"], model="m"), binary=True)
    body, headers = triton_request([
        triton_input("image", np.array([jpeg], dtype=object), True),
        triton_input("text", np.array([b"a cat", b"a dog"], dtype=object), True),
    ])
    ours_len = int(ours.headers["inference-header-content-length"])
    theirs_len = int(headers["Inference-Header-Content-Length"])
    assert ours.body[ours_len:] == body[theirs_len:]
    ours_inputs = json.loads(ours.body[:ours_len])["inputs"]
    theirs_inputs = json.loads(body[:theirs_len])["inputs"]
    assert ours_inputs == theirs_inputs
    a, b = decode_v2_request(ours.body, ours.headers), decode_v2_request(body, headers)
    assert (a.inputs.images, a.inputs.texts) == (b.inputs.images, b.inputs.texts)


def parse_with_tritonclient(body: bytes, headers: dict[str, str]):
    length = headers.get("inference-header-content-length")
    return httpclient.InferResult.from_response_body(body, header_length=int(length) if length else None)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", sorted(NUMPY_DTYPES))
def test_tritonclient_reads_mmship_responses(datatype, binary):
    array = sample(datatype, (2, 2))
    body, headers = encode_v2_response("clip", "1", "r", {"y": array}, binary)
    result = parse_with_tritonclient(body, headers)
    expected = array.astype(np.float32) if datatype == "FP16" and not binary else array
    got = result.as_numpy("y")
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert result.get_response()["id"] == "r" and result.get_response()["model_name"] == "clip"


def test_tritonclient_reads_mixed_binary_and_json_outputs():
    outputs = {
        "image_embeds": np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32),
        "text_embeds": np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32),
        "logits_per_image": np.arange(6, dtype=np.float32).reshape(2, 3),
        "names": np.array([b"a", b"\xffb"], dtype=object),
    }
    body, headers = encode_v2_response("clip", "1", None, outputs, {"image_embeds", "logits_per_image", "names"})
    result = parse_with_tritonclient(body, headers)
    for name, array in outputs.items():
        got = result.as_numpy(name)
        if array.dtype == object:
            assert got.tolist() == array.tolist()
        else:
            np.testing.assert_array_equal(got, array)
