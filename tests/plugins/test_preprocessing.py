"""Steps of mmship's pixel pipeline against transformers' own functions, decoding errors,
the pixel cap, and speed."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from mmship.core.errors import InputSpecError
from mmship.core.specs import ImagePreprocessSpec
from mmship.preprocess.pixels import (
    ImagePreprocessor,
    center_crop,
    decode_image,
    preprocess_images,
    shortest_edge_size,
    to_rgb,
    value_table,
)
from tests.plugins.conftest import encode
from tests.plugins.test_preprocessing_parity import CLIP_MEAN, CLIP_STD, SPECS

# --- the steps, against transformers' implementations --------------------------------


def test_shortest_edge_rounding_matches_transformers():
    from transformers.image_transforms import get_resize_output_image_size
    from transformers.image_utils import ChannelDimension

    rng = np.random.default_rng(0)
    sizes = [(300, 451), (451, 300), (224, 224), (223, 225), (1, 999), (999, 1), (5, 7), (427, 640)]
    sizes += [tuple(int(v) for v in rng.integers(1, 5000, 2)) for _ in range(300)]
    for edge in (224, 97, 336):
        for h, w in sizes:
            dummy = np.empty((3, h, w), dtype=np.uint8)
            expected = get_resize_output_image_size(dummy, edge, default_to_square=False,
                                                    input_data_format=ChannelDimension.FIRST)
            assert shortest_edge_size(h, w, edge) == tuple(expected), (h, w, edge)


@pytest.mark.parametrize("shape", [(300, 451), (224, 224), (225, 301), (223, 224), (100, 50), (5, 7), (224, 300)])
@pytest.mark.parametrize("crop", [(224, 224), (91, 65), (1, 1)])
def test_center_crop_matches_transformers(shape, crop):
    from transformers.image_transforms import center_crop as hf_center_crop
    from transformers.image_utils import ChannelDimension

    pixels = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = hf_center_crop(pixels, crop, input_data_format=ChannelDimension.LAST)
    np.testing.assert_array_equal(center_crop(pixels, *crop), expected)


@pytest.mark.parametrize("rescale", [1 / 255, None, 0.5])
@pytest.mark.parametrize("mean_std", [(CLIP_MEAN, CLIP_STD), ([0.5] * 3, [0.5] * 3), (None, None)])
def test_value_table_is_bit_identical_to_rescale_then_normalize(rescale, mean_std):
    from transformers.image_transforms import normalize
    from transformers.image_transforms import rescale as hf_rescale
    from transformers.image_utils import ChannelDimension

    pixels = np.arange(256 * 3, dtype=np.uint8).reshape(3, 16, 16)  # every value in every channel
    expected = hf_rescale(pixels, rescale, input_data_format=ChannelDimension.FIRST) if rescale else pixels
    mean, std = mean_std
    if mean is not None:
        expected = normalize(expected, mean, std, input_data_format=ChannelDimension.FIRST)
    spec = ImagePreprocessSpec(rescale_factor=rescale, mean=mean, std=std)
    table = value_table(spec)
    got = np.stack([table[c][pixels[c]] for c in range(3)])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float32))


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "PA", "CMYK", "1", "I;16", "RGB"])
def test_rgb_conversion_matches_transformers(mode):
    from transformers.image_transforms import convert_to_rgb

    base = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 30, 4), dtype=np.uint8), "RGBA")
    image = base.convert(mode) if mode not in ("P", "PA") else base.convert("RGB").convert(mode)
    converted = to_rgb(image)
    assert converted.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(converted), convert_to_rgb(image, return_numpy=True))


def test_rgb_colour_key_transparency_is_composited_like_transformers():
    from transformers.image_transforms import convert_to_rgb

    image = Image.new("RGB", (4, 4), (10, 20, 30))
    image.putpixel((0, 0), (1, 2, 3))
    image.info["transparency"] = (1, 2, 3)
    converted = np.asarray(to_rgb(image))
    np.testing.assert_array_equal(converted, convert_to_rgb(image, return_numpy=True))
    assert tuple(converted[0, 0]) == (255, 255, 255)


# --- decoding ------------------------------------------------------------------------


def test_decode_errors_are_input_spec_errors_with_hints(photo_bytes):
    jpeg, png = photo_bytes["chelsea-jpeg"], photo_bytes["chelsea"]
    cases = {
        b"": "is empty",
        b"definitely not an image": "not an encoded image (JPEG/PNG/WebP)",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40: "not an image Pillow can read",
        jpeg[: len(jpeg) // 2]: "truncated",
        png[: len(png) // 3]: "truncated",
    }
    for data, words in cases.items():
        with pytest.raises(InputSpecError) as info:
            decode_image(data, where="image 7")
        assert words in str(info.value) and "image 7" in str(info.value)
        assert info.value.hint
        assert isinstance(info.value, Exception)


def test_bad_image_in_a_batch_is_named_by_index(photo_bytes):
    prep = ImagePreprocessor(SPECS["clip"])
    with pytest.raises(InputSpecError, match="image 1 "):
        prep([photo_bytes["chelsea"], b"\x89PNG\r\n\x1a\n garbage"])
    with pytest.raises(InputSpecError, match="image 0 is a str"):
        prep(["not bytes"])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming ``width`` x ``height`` pixels with no pixel data: what a
    decompression bomb looks like to a header check."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_pixel_cap_refuses_from_the_header():
    with pytest.raises(InputSpecError) as info:
        ImagePreprocessor(SPECS["clip"], max_pixels=40_000_000)([png_header_only(9_000, 5_000)])
    message = str(info.value)
    assert "image 0 is 9000x5000 = 45,000,000 pixels" in message and "cap of 40,000,000" in message
    assert "max_image_pixels" in info.value.hint
    small = encode(Image.new("RGB", (300, 200)))
    with pytest.raises(InputSpecError, match="60,000 pixels, more than the cap of 59,999"):
        decode_image(small, max_pixels=59_999)
    assert decode_image(small, max_pixels=60_000).size == (300, 200)


def test_pillow_bomb_guard_becomes_an_input_error():
    with pytest.raises(InputSpecError, match="too large to decode safely"):
        decode_image(png_header_only(20_000, 10_000), max_pixels=None)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_decoded_image_is_fully_loaded_and_first_frame(fmt):
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], **({"lossless": True} if fmt == "WEBP" else {}))
    image = decode_image(buffer.getvalue())
    assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_spec_options():
    with pytest.raises(ValueError, match="antialias"):
        ImagePreprocessor(ImagePreprocessSpec(resize_shortest_edge=224, antialias=False))
    strict = ImagePreprocessor(SPECS["clip"].model_copy(update={"convert_rgb": False}))
    with pytest.raises(InputSpecError, match="mode L"):
        strict([Image.new("L", (30, 30))])
    assert strict([Image.new("RGB", (30, 30))]).shape == (1, 3, 224, 224)
    varying = ImagePreprocessor(ImagePreprocessSpec(resize_shortest_edge=32))
    assert varying([Image.new("RGB", (64, 48))]).shape == (1, 3, 32, 42)
    with pytest.raises(InputSpecError, match="different sizes"):
        varying([Image.new("RGB", (64, 48)), Image.new("RGB", (48, 64))])
    assert ImagePreprocessor(SPECS["vit"])([]).shape == (0, 3, 224, 224)


def test_module_function_and_thread_safety(photo_bytes):
    from concurrent.futures import ThreadPoolExecutor

    data = [photo_bytes[n] for n in ("chelsea", "rocket", "grayscale", "rgba")]
    expected = preprocess_images(data, SPECS["flava"])
    prep = ImagePreprocessor(SPECS["flava"])
    with ThreadPoolExecutor(4) as pool:
        for batch in pool.map(prep, [data] * 8):
            np.testing.assert_array_equal(batch, expected)


# --- weight and speed ----------------------------------------------------------------


def test_runtime_modules_import_neither_torch_nor_transformers():
    code = (
        "import sys, mmship.preprocess.pixels, mmship.preprocess.tokens\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_faster_than_the_hf_processor(photo_bytes, hf_image_processors):
    """Same decode and resize as HF, then one table lookup per value instead of four numpy
    passes: never slower than the reference."""
    data = [photo_bytes[n] for n in ("chelsea-jpeg", "astronaut-square", "coffee", "rocket")] * 2
    prep, hf = ImagePreprocessor(SPECS["clip"]), hf_image_processors["clip"]

    def best(fn, repeat=5) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    ours = best(lambda: prep(data))
    theirs = best(lambda: hf([Image.open(io.BytesIO(d)) for d in data], return_tensors="np"))
    assert ours <= theirs * 1.1, f"mmship {ours * 1e3:.1f} ms vs HF {theirs * 1e3:.1f} ms for {len(data)} images"
    pixels = prep.geometry(Image.open(io.BytesIO(data[0])).convert("RGB"))
    assert best(lambda: prep.values(pixels), repeat=20) < 0.005  # normalize one 224x224 image: well under 5 ms
