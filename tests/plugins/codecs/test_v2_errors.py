"""Every bad v2 request gets a message naming what was expected, what came and the fix."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from mmship.core.errors import InputSpecError
from mmship.core.payload import PayloadInputs
from mmship.payload.binary import serialize_bytes_tensor
from mmship.plugins.codecs.v2 import decode_v2_request, encode_v2_request


def decode_json(doc) -> object:
    return decode_v2_request(json.dumps(doc).encode(), {"content-type": "application/json"})


def error_of(doc) -> InputSpecError:
    with pytest.raises(InputSpecError) as info:
        decode_json(doc)
    assert info.value.hint, "every error carries a fix"
    return info.value


def one(entry: dict) -> dict:
    return {"inputs": [entry]}


def test_wrong_datatype_for_a_known_input():
    err = error_of(one({"name": "input_ids", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}))
    assert err.message == "input 'input_ids' must be INT64 or INT32, got FP32"
    assert "INT64" in err.hint and "token ids" in err.hint


def test_image_sent_as_pixels_is_refused_with_the_right_fix():
    err = error_of(one({"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3], "data": [0] * 12}))
    assert err.message == "input 'image' must be BYTES, got UINT8"
    assert "pixel_values" in err.hint and "BYTES" in err.hint


def test_shape_and_data_length_mismatch():
    err = error_of(one({"name": "input_ids", "datatype": "INT64", "shape": [2, 77], "data": [0] * 150}))
    assert err.message == "input 'input_ids': shape [2, 77] needs 154 values, got 150"


def test_nested_data_with_wrong_count_and_ragged_rows():
    err = error_of(one({"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2, 3], [4, 5, 6]]}))
    assert "shape [2, 2] needs 4 values, got 6" in err.message
    err = error_of(one({"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3]]}))
    assert "rows of different lengths" in err.message


def test_unknown_datatype_suggests_the_right_one():
    err = error_of(one({"name": "x", "datatype": "FLOAT32", "shape": [1], "data": [1]}))
    assert err.message == "input 'x' has unknown datatype 'FLOAT32'" and err.hint == "use FP32"
    err = error_of(one({"name": "x", "datatype": "QUUX", "shape": [1], "data": [1]}))
    assert "BOOL" in err.hint and "BYTES" in err.hint
    err = error_of(one({"name": "x", "datatype": "BF16", "shape": [1], "data": [1]}))
    assert "BF16" in err.message


def test_lower_case_datatypes_are_accepted():
    decoded = decode_json(one({"name": "input_ids", "datatype": "int64", "shape": [1], "data": [5]}))
    assert decoded.inputs.tensors["input_ids"].dtype == np.int64


def test_bad_base64_names_the_element(jpeg):
    good = base64.b64encode(jpeg).decode()
    err = error_of(one({"name": "image", "datatype": "BYTES", "shape": [2], "data": [good, "not*base64!"],
                        "parameters": {"content_type": "base64"}}))
    assert err.message.startswith("input 'image' element 1 is not valid base64")
    assert "character 3 is '*'" in err.message


def test_base64_of_raw_pixels_is_called_out():
    pixels = np.zeros((224, 224, 3), np.uint8).tobytes()  # the seed's img.tobytes()
    err = error_of(one({"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(pixels).decode()]}))
    assert "input 'image' element 0 is not an encoded image (JPEG/PNG/WebP)" in err.message
    assert "224x224x3: it looks like raw pixels" in err.message
    assert "img.tobytes()" in err.hint


def test_the_seed_payload_gets_pointed_at_the_v2_shape():
    err = error_of({"inputs": [{"name": "image", "data": "aGVsbG8=", "type": "base64"},
                               {"name": "text", "data": "a photo of cat", "type": "text"}]})
    assert err.message == "input 'image' has \"type\": 'base64' but no \"datatype\" and \"shape\""
    assert '"datatype": "BYTES"' in err.hint


def test_image_urls_are_refused():
    err = error_of(one({"name": "image", "datatype": "BYTES", "shape": [1], "data": ["https://example.com/cat.jpg"]}))
    assert "is a URL" in err.message


def test_data_uri_without_base64():
    err = error_of(one({"name": "image", "datatype": "BYTES", "shape": [1], "data": ["data:image/png,abc"]}))
    assert "data URI without ';base64,'" in err.message


def test_malformed_json_has_the_position():
    with pytest.raises(InputSpecError) as info:
        decode_v2_request(b'{"inputs": [{"name": "text",}]}', {})
    assert "line 1 column 29" in info.value.message and "not valid JSON" in info.value.message


def test_body_not_an_object():
    assert "is a JSON list, not an object" in error_of([1, 2]).message


def test_missing_and_empty_inputs():
    err = error_of({"id": "x"})
    assert err.message == "the body has no 'inputs' list" and '"inputs"' in err.hint
    assert error_of({"inputs": []}).message == "the 'inputs' list is empty"


def test_empty_batch():
    err = error_of(one({"name": "input_ids", "datatype": "INT64", "shape": [0, 77], "data": []}))
    assert err.message == "input 'input_ids' has an empty batch (shape [0, 77])"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"datatype": "FP32", "shape": [1], "data": [1]}, "input 0 has no name"),
        ({"name": "x", "shape": [1], "data": [1]}, "input 'x' has no datatype"),
        ({"name": "x", "datatype": "FP32", "data": [1]}, "input 'x' has no shape"),
        ({"name": "x", "datatype": "FP32", "shape": "1", "data": [1]}, "shape '1'; a shape is a list"),
        ({"name": "x", "datatype": "FP32", "shape": [-1, 3], "data": [1]}, "needs actual sizes, not -1"),
        ({"name": "x", "datatype": "FP32", "shape": [1]}, "input 'x' has no data"),
        ({"name": "x", "datatype": "FP16", "shape": [1], "data": [1.0]}, "FP16 in JSON; FP16 travels only as binary"),
        ({"name": "x", "datatype": "FP32", "shape": [2], "data": [1, "a"]}, "is FP32 but its data holds str values such as 'a'"),
        ({"name": "x", "datatype": "INT64", "shape": [2], "data": [1, None]}, "holds NoneType values"),
        ({"name": "x", "datatype": "INT64", "shape": [2], "data": [1, 1.5]}, "non-integer values such as 1.5"),
        ({"name": "x", "datatype": "INT8", "shape": [2], "data": [1, 300]}, "holds 300, outside \\[-128, 127\\]"),
        ({"name": "x", "datatype": "UINT8", "shape": [1], "data": [-1]}, "holds -1, outside \\[0, 255\\]"),
        ({"name": "x", "datatype": "BOOL", "shape": [1], "data": [2]}, "other than true/false"),
        ({"name": "text", "datatype": "BYTES", "shape": [1], "data": [5]}, "element 0 is a int; BYTES data in JSON are strings"),
        ({"name": "x", "datatype": "FP32", "shape": [1], "parameters": "p"}, "parameters 'p'; they must be an object"),
        ({"name": "x", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}},
         "declares binary_data_size but the body has no Inference-Header-Content-Length"),
    ],
)
def test_structural_errors(entry, message):
    with pytest.raises(InputSpecError, match=message) as info:
        decode_json(one(entry))
    assert info.value.hint


def test_integral_floats_are_accepted_for_integer_inputs():
    decoded = decode_json(one({"name": "input_ids", "datatype": "INT64", "shape": [2], "data": [1.0, 2]}))
    np.testing.assert_array_equal(decoded.inputs.tensors["input_ids"], [1, 2])


def test_duplicate_inputs():
    entry = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}
    assert error_of({"inputs": [entry, entry]}).message == "input 'text' appears twice"


def test_request_id_and_outputs_types():
    entry = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}
    assert "ids are strings" in error_of({"id": 5, "inputs": [entry]}).message
    assert "requested output 0 has no name" in error_of({"inputs": [entry], "outputs": [{}]}).message
    assert "binary_data 'yes'" in error_of(
        {"inputs": [entry], "outputs": [{"name": "y", "parameters": {"binary_data": "yes"}}]}
    ).message


def binary_body(header: dict, tail: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + tail, {"Inference-Header-Content-Length": str(len(head))}


def test_binary_size_disagreeing_with_the_bytes_left():
    body, headers = binary_body(
        one({"name": "input_ids", "datatype": "INT64", "shape": [1, 4], "parameters": {"binary_data_size": 32}}), b"\x00" * 24
    )
    with pytest.raises(InputSpecError, match="declares binary_data_size 32 but only 24 bytes are left"):
        decode_v2_request(body, headers)


def test_binary_size_disagreeing_with_the_shape():
    body, headers = binary_body(
        one({"name": "input_ids", "datatype": "INT64", "shape": [1, 4], "parameters": {"binary_data_size": 24}}), b"\x00" * 24
    )
    with pytest.raises(InputSpecError, match=r"input 'input_ids' \(INT64, shape \[1, 4\]\) needs 32 bytes .* got 24"):
        decode_v2_request(body, headers)


def test_binary_truncated_bytes_element(jpeg):
    section = serialize_bytes_tensor([jpeg])[:-10]
    body, headers = binary_body(
        one({"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(section)}}), section
    )
    with pytest.raises(InputSpecError, match=f"input 'image': element 0 declares {len(jpeg)} bytes but only {len(jpeg) - 10}"):
        decode_v2_request(body, headers)


def test_binary_raw_pixels_instead_of_an_encoded_image():
    section = serialize_bytes_tensor([np.zeros((8, 8, 3), np.uint8).tobytes()])
    body, headers = binary_body(
        one({"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(section)}}), section
    )
    with pytest.raises(InputSpecError, match="input 'image' element 0 is not an encoded image"):
        decode_v2_request(body, headers)


def test_binary_text_not_utf8():
    section = serialize_bytes_tensor([b"ok", b"\xff\xfe"])
    body, headers = binary_body(
        one({"name": "text", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(section)}}), section
    )
    with pytest.raises(InputSpecError, match=r"input 'text' element 1 is not UTF-8 \(byte 0 is 0xff\)"):
        decode_v2_request(body, headers)


def test_binary_both_data_and_size():
    body, headers = binary_body(
        one({"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0], "parameters": {"binary_data_size": 4}}), b"\x00" * 4
    )
    with pytest.raises(InputSpecError, match="both \"data\" and binary_data_size"):
        decode_v2_request(body, headers)


def test_binary_body_without_the_header_points_at_it():
    encoded = encode_v2_request(PayloadInputs(texts=["a"], model="m"), binary=True)
    with pytest.raises(InputSpecError) as info:
        decode_v2_request(encoded.body, {"content-type": "application/octet-stream"})
    assert "Inference-Header-Content-Length" in info.value.hint


def test_compressed_bodies_are_refused():
    with pytest.raises(InputSpecError, match="Content-Encoding: gzip"):
        decode_v2_request(b"\x1f\x8b", {"Content-Encoding": "gzip"})


def test_client_refuses_raw_pixels_before_sending():
    with pytest.raises(InputSpecError, match="image 0 is not an encoded image"):
        encode_v2_request(PayloadInputs(images=[np.zeros((4, 4, 3), np.uint8).tobytes()], model="m"), binary=True)


def test_client_refuses_fp16_in_json_and_empty_requests():
    with pytest.raises(InputSpecError, match="travels only as binary"):
        encode_v2_request(PayloadInputs(tensors={"pixel_values": np.zeros((1, 3), np.float16)}, model="m"), binary=False)
    with pytest.raises(InputSpecError, match="nothing to send"):
        encode_v2_request(PayloadInputs(model="m"), binary=False)
