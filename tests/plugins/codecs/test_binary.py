"""The binary tensor data extension: framing, BYTES elements, sizes, truncation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from mmship.core.errors import InputSpecError
from mmship.payload.binary import (
    binary_data_size,
    deserialize_bytes_tensor,
    header_length_of,
    join_body,
    parse_json,
    section_to_tensor,
    serialize_bytes_tensor,
    slice_sections,
    split_body,
    tensor_to_section,
)
from mmship.payload.datatypes import NUMPY_DTYPES


def test_bytes_elements_are_length_prefixed_little_endian():
    section = serialize_bytes_tensor([b"ab", "é", b""])
    assert section == b"\x02\x00\x00\x00ab" + b"\x02\x00\x00\x00\xc3\xa9" + b"\x00\x00\x00\x00"
    assert deserialize_bytes_tensor(section, "input 'x'") == [b"ab", "é".encode(), b""]


def test_bytes_round_trip_of_binary_content():
    items = [bytes(range(256)), b"\x00" * 7, b"\xff\xd8\xff"]
    assert deserialize_bytes_tensor(serialize_bytes_tensor(items), "input 'x'", count=3) == items


def test_bytes_count_must_match_shape():
    with pytest.raises(InputSpecError, match="shape declares 3 elements but the binary data holds 2"):
        deserialize_bytes_tensor(serialize_bytes_tensor([b"a", b"b"]), "input 'text'", count=3)


def test_bytes_truncated_length_prefix():
    section = serialize_bytes_tensor([b"abc"]) + b"\x05\x00"
    with pytest.raises(InputSpecError, match=r"input 'text': element 1 is cut off: 2 bytes left where a 4-byte length prefix"):
        deserialize_bytes_tensor(section, "input 'text'")


def test_bytes_oversized_element_length():
    section = struct.pack("<I", 0xFFFFFFF0) + b"abc"
    with pytest.raises(InputSpecError, match="element 0 declares 4294967280 bytes but only 3 bytes are left"):
        deserialize_bytes_tensor(section, "input 'image'")


@pytest.mark.parametrize("datatype", sorted(NUMPY_DTYPES))
def test_numeric_sections_round_trip_every_datatype(datatype):
    dtype = NUMPY_DTYPES[datatype]
    values = (np.arange(6) % 2).astype(dtype) if datatype == "BOOL" else np.arange(6).astype(dtype)
    array = values.reshape(2, 3)
    section = tensor_to_section(array, datatype)
    assert section == array.astype(dtype.newbyteorder("<")).tobytes()
    back = section_to_tensor(section, datatype, [2, 3], "input 'x'")
    assert back.dtype == dtype and back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)


def test_numeric_sections_are_little_endian_whatever_the_input_order():
    big = np.array([1, 256], dtype=">i4")
    assert tensor_to_section(big, "INT32") == b"\x01\x00\x00\x00\x00\x01\x00\x00"


def test_non_contiguous_arrays_are_written_row_major():
    array = np.arange(6, dtype=np.float32).reshape(2, 3).T  # Fortran-ordered view
    back = section_to_tensor(tensor_to_section(array, "FP32"), "FP32", [3, 2], "x")
    np.testing.assert_array_equal(back, array)


def test_numeric_section_size_must_match_shape():
    with pytest.raises(InputSpecError, match=r"input 'pixel_values' \(FP32, shape \[1, 3, 2, 2\]\) needs 48 bytes .* got 44"):
        section_to_tensor(b"\x00" * 44, "FP32", [1, 3, 2, 2], "input 'pixel_values'")


def test_bytes_tensor_section_reshapes():
    section = tensor_to_section(np.array([[b"a", b"b"], [b"c", b"d"]], dtype=object), "BYTES")
    back = section_to_tensor(section, "BYTES", [2, 2], "x")
    assert back.dtype == object and back.tolist() == [[b"a", b"b"], [b"c", b"d"]]


def test_header_length_lookup_ignores_case():
    assert header_length_of({"Inference-Header-Content-Length": "12"}) == "12"
    assert header_length_of({"content-type": "application/json"}) is None


def test_split_body_uses_the_header_length():
    head, rest = split_body(b'{"a":1}XYZ', "7")
    assert head == b'{"a":1}' and bytes(rest) == b"XYZ"
    head, rest = split_body(b'{"a":1}', None)
    assert head == b'{"a":1}' and bytes(rest) == b""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "Inference-Header-Content-Length is 'abc', not a byte count"),
        ("-4", "says the JSON part is -4 bytes, but the body has 10 bytes"),
        ("0", "says the JSON part is 0 bytes"),
        ("99", "says the JSON part is 99 bytes, but the body has 10 bytes"),
    ],
)
def test_split_body_rejects_bad_header_lengths(value, message):
    with pytest.raises(InputSpecError, match=message):
        split_body(b"0123456789", value)


def test_slice_sections_in_input_order_skipping_json_inputs():
    entries = [
        {"name": "a", "parameters": {"binary_data_size": 3}},
        {"name": "b", "data": [1]},
        {"name": "c", "parameters": {"binary_data_size": 2}},
    ]
    sections = slice_sections(entries, b"AAACC")
    assert {k: bytes(v) for k, v in sections.items()} == {0: b"AAA", 2: b"CC"}


def test_slice_sections_zero_size_is_fine():
    assert bytes(slice_sections([{"name": "a", "parameters": {"binary_data_size": 0}}], b"")[0]) == b""


def test_slice_sections_truncated_body():
    entries = [{"name": "image", "parameters": {"binary_data_size": 600}}]
    with pytest.raises(InputSpecError, match="input 'image' declares binary_data_size 600 but only 100 bytes are left"):
        slice_sections(entries, b"x" * 100)


def test_slice_sections_leftover_bytes():
    entries = [{"name": "a", "parameters": {"binary_data_size": 2}}]
    with pytest.raises(InputSpecError, match=r"the body has 3 bytes after the binary sections the JSON declares \(binary_data_size: 2\)"):
        slice_sections(entries, b"xxxxx")


@pytest.mark.parametrize(
    ("size", "message"),
    [(-1, "negative binary_data_size \\(-1\\)"), ("12", "binary_data_size '12'"), (1.5, "binary_data_size 1.5"), (True, "binary_data_size True")],
)
def test_binary_data_size_must_be_a_non_negative_whole_number(size, message):
    with pytest.raises(InputSpecError, match=message):
        binary_data_size({"name": "a", "parameters": {"binary_data_size": size}}, "input 'a'")


def test_join_body_reports_the_header_length_in_bytes():
    body, length = join_body({"name": "é"}, [b"\x01\x02"])
    assert body[:length] == json.dumps({"name": "é"}, separators=(",", ":")).encode()
    assert body[length:] == b"\x01\x02"


def test_parse_json_error_has_position():
    with pytest.raises(InputSpecError) as info:
        parse_json(b'{"inputs": [1, 2,, 3]}')
    assert "line 1 column 18 (character 17" in info.value.message


def test_parse_json_extra_data_hints_at_the_header():
    with pytest.raises(InputSpecError) as info:
        parse_json(b'{"inputs": []}\x00\x01binary')
    assert "Inference-Header-Content-Length" in (info.value.hint or "")


def test_parse_json_non_utf8():
    with pytest.raises(InputSpecError, match=r"not UTF-8 JSON \(byte 1 is 0xff\)"):
        parse_json(b"{\xff}")
