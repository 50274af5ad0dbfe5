"""Images on the wire: encoded files only; what users hold becomes encoded bytes."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mmship.core.errors import InputSpecError
from mmship.payload.images import (
    check_encoded_image,
    decode_base64,
    decode_image_text,
    encode_image_text,
    image_format,
    to_image_bytes,
)


def encoded(fmt: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (4, 4), 128 if mode == "L" else (10, 20, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tiff")])
def test_formats_are_recognised(fmt, name):
    assert image_format(encoded(fmt)) == name


def test_raw_pixels_are_called_out():
    with pytest.raises(InputSpecError) as info:
        check_encoded_image(np.zeros((32, 32, 3), np.uint8).tobytes(), "image 0")
    assert "32x32x3: it looks like raw pixels" in info.value.message
    with pytest.raises(InputSpecError, match="image 0 is empty"):
        check_encoded_image(b"", "image 0")


def test_base64_leniency(jpeg):
    text = base64.b64encode(jpeg).decode()
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert decode_base64(wrapped, "x") == jpeg
    assert decode_base64(text.rstrip("="), "x") == jpeg
    assert decode_base64(base64.urlsafe_b64encode(jpeg).decode(), "x") == jpeg


def _tolerant_stdlib(text: str) -> bytes:
    """The documented leniency, with the standard library's strict decoder: whitespace
    dropped, URL-safe letters mapped, padding completed."""
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)


@given(st.binary(max_size=64), st.text(alphabet="AQgw+/-_= \n\tZz09é\x00", max_size=40), st.integers(0, 3))
@settings(max_examples=400, deadline=None)
def test_the_fast_decoder_answers_as_the_tolerant_standard_one(data, noise, form):
    """Canonical, URL-safe, unpadded, wrapped encodings and arbitrary text: the same bytes,
    or an error exactly when the standard library's tolerant decoding refuses too."""
    text = [base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode(),
            base64.b64encode(data).decode().rstrip("="), noise][form]
    for candidate in (text, text[:4] + " \n" + text[4:], noise + text):
        try:
            expected = _tolerant_stdlib(candidate)
        except (ValueError, binascii.Error):
            with pytest.raises(InputSpecError, match="is not valid base64"):
                decode_base64(candidate, "x")
        else:
            assert decode_base64(candidate, "x") == expected


def test_data_uri_round_trip(png):
    uri = encode_image_text(png, data_uri=True)
    assert uri.startswith("data:image/png;base64,")
    assert decode_image_text(uri, "image") == png


def test_non_string_image_field():
    with pytest.raises(InputSpecError, match="images\\[0\\] is a int, not a string"):
        decode_image_text(5, "images[0]")


def test_paths_and_bytes_are_sent_as_they_are(tmp_path, jpeg):
    path = tmp_path / "cat.jpg"
    path.write_bytes(jpeg)
    assert to_image_bytes(path) == jpeg
    assert to_image_bytes(str(path)) == jpeg
    assert to_image_bytes(jpeg) == jpeg


def test_other_formats_are_reencoded_to_png(tmp_path):
    path = tmp_path / "x.bmp"
    path.write_bytes(encoded("BMP"))
    assert image_format(to_image_bytes(path)) == "png"
    assert image_format(to_image_bytes(encoded("TIFF"))) == "png"


def test_pil_images_and_arrays_become_png():
    data = to_image_bytes(Image.new("RGB", (5, 3), (1, 2, 3)))
    assert image_format(data) == "png"
    assert Image.open(io.BytesIO(data)).size == (5, 3)
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    back = np.asarray(Image.open(io.BytesIO(to_image_bytes(array))))
    np.testing.assert_array_equal(back, array)  # lossless
    assert image_format(to_image_bytes(Image.new("F", (2, 2)))) == "png"


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 8, 8), np.uint8), "channels-first"),
        (np.zeros((8, 8, 3), np.float32), "pixels must be uint8"),
        (np.zeros((2, 8, 8, 3), np.uint8), "an image is height x width"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(InputSpecError, match=message):
        to_image_bytes(array)


def test_missing_file_and_raw_bytes_and_wrong_type(tmp_path):
    with pytest.raises(InputSpecError, match="no file"):
        to_image_bytes(tmp_path / "nope.jpg")
    with pytest.raises(InputSpecError, match="not an encoded image"):
        to_image_bytes(np.zeros((16, 16, 3), np.uint8).tobytes())
    with pytest.raises(InputSpecError, match="is a int"):
        to_image_bytes(5)  # type: ignore[arg-type]
