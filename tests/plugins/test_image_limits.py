"""The image pipeline judges every size an image takes (decoded, resize target, shape) and
the sum over a call, from the headers, before any pixel is decoded; only JPEG, PNG and
WebP are decoded; a deadline stops a batch between images."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from mmship.core.errors import InputSpecError
from mmship.preprocess.image_limits import ImageLimits
from mmship.preprocess.pixels import ImagePreprocessor, decode_image, open_image
from mmship.payload.images import check_encoded_image
from tests.plugins.test_preprocessing import png_header_only
from tests.plugins.test_preprocessing_parity import SPECS


def png(width: int, height: int, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_the_274_byte_200000x1_png_is_refused_by_its_aspect_ratio():
    data = png(200_000, 1)
    assert len(data) == 274  # the attacker's file: 200,000 pixels, far under any pixel cap
    pipeline = ImagePreprocessor(SPECS["clip"], limits=ImageLimits(max_pixels=40_000_000, max_aspect_ratio=100))
    with pytest.raises(InputSpecError) as info:
        pipeline([data])
    assert "200000x1: its aspect ratio of 200,000:1 is over the limit of 100:1" in info.value.message
    assert "--max-aspect-ratio" in info.value.hint


@pytest.mark.parametrize(("width", "height"), [(200_000, 1), (1500, 1), (1, 1500)])
def test_the_resize_target_is_capped_even_without_an_aspect_limit(width, height):
    """CLIP resizes the short edge to 224: a 1500x1 image asks for 336000x224 = 75 M pixels."""
    pipeline = ImagePreprocessor(SPECS["clip"], limits=ImageLimits(max_pixels=40_000_000))
    with pytest.raises(InputSpecError) as info:
        pipeline([png(width, height)])
    assert "resizes to" in info.value.message and "more than the cap of 40,000,000" in info.value.message
    assert "--max-image-pixels" in info.value.hint


def test_limits_are_checked_from_the_header_before_decoding():
    """A header-only PNG cannot be decoded: being told about the limit proves nothing was."""
    pipeline = ImagePreprocessor(SPECS["clip"], limits=ImageLimits(max_pixels=40_000_000, max_aspect_ratio=100))
    with pytest.raises(InputSpecError, match="aspect ratio"):
        pipeline([png_header_only(30_000, 10)])
    with pytest.raises(InputSpecError, match="truncated|could not be decoded|not an image"):
        pipeline([png_header_only(300, 200)])


def test_the_sum_over_a_call_is_capped_before_any_image_is_decoded():
    pipeline = ImagePreprocessor(SPECS["clip"], limits=ImageLimits(max_pixels=1_000_000, max_request_pixels=2_500_000))
    images = [png_header_only(1000, 1000)] * 3  # each at the per-image cap, undecodable
    with pytest.raises(InputSpecError) as info:
        pipeline(images)
    assert "the request's 3 images hold 3,000,000 pixels together, more than the cap of 2,500,000" in info.value.message
    assert "--max-request-pixels" in info.value.hint


def test_the_sum_of_resize_targets_is_capped_too():
    """Small images that the model upsamples: few decoded pixels, many after the resize."""
    pipeline = ImagePreprocessor(SPECS["clip"], limits=ImageLimits(max_pixels=1_000_000, max_request_pixels=200_000))
    with pytest.raises(InputSpecError, match="images are resized to 501,760 pixels together"):
        pipeline([png(10, 5)] * 5)  # each 50 pixels, resized to 448x224 (short edge 224) = 100,352


def test_images_within_every_limit_are_processed():
    pipeline = ImagePreprocessor(SPECS["clip"], limits=ImageLimits(max_pixels=1_000_000, max_request_pixels=3_000_000, max_aspect_ratio=100))
    assert pipeline([png(300, 200, "RGB"), png(400, 100, "RGB")]).shape == (2, 3, 224, 224)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_only_jpeg_png_and_webp_are_decoded(fmt):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format=fmt)
    data = buffer.getvalue()
    for refuse in (lambda: check_encoded_image(data, "image 0"), lambda: decode_image(data, where="image 0"),
                   lambda: ImagePreprocessor(SPECS["clip"])([data])):
        with pytest.raises(InputSpecError) as info:
            refuse()
        assert f"image 0 is a {fmt} file; the server takes JPEG, PNG or WebP images only" in info.value.message


def test_a_file_that_looks_like_png_but_is_another_format_is_not_decoded():
    """Pillow itself is told which formats to try: a GIF body behind a PNG signature fails."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    disguised = b"\x89PNG\r\n\x1a\n" + buffer.getvalue()
    with pytest.raises(InputSpecError, match="not an image Pillow can read"):
        open_image(disguised)


def test_a_past_deadline_stops_the_batch_between_images():
    pipeline = ImagePreprocessor(SPECS["clip"])
    images = [png(400, 300, "RGB")] * 4
    with pytest.raises(TimeoutError, match="preprocessing image 0 of 4"):
        pipeline(images, deadline=time.monotonic() - 1)
    assert pipeline(images, deadline=time.monotonic() + 60).shape == (4, 3, 224, 224)
