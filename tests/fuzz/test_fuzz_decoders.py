"""Property: every decoder either decodes or refuses with an :class:`InputSpecError` (a 400
naming expected / got / fix), within the example deadline; no other exception ever leaves
it. Runs in-process, so thousands of inputs cost seconds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmship.core.errors import InputSpecError
from mmship.plugins.codecs.embed import decode_classify_request, decode_embed_request
from mmship.plugins.codecs.rank import decode_rank_request
from mmship.plugins.codecs.v2 import decode_v2_request
from mmship.preprocess.image_limits import ImageLimits
from mmship.preprocess.pixels import ImagePreprocessor
from tests.fuzz.strategies import (
    classify_bodies,
    embed_bodies,
    encoded_images,
    rank_bodies,
    v2_binary_bodies,
    v2_json_bodies,
)
from tests.plugins.test_preprocessing_parity import SPECS

pytestmark = pytest.mark.fuzz

JSON = {"content-type": "application/json"}


def refused_or_decoded(decode, *args):
    """Run a decoder: its answer, or ``None`` when it refused with an InputSpecError."""
    try:
        return decode(*args)
    except InputSpecError as exc:
        assert exc.message and exc.hint, f"a refusal without a fix: {exc!r}"
        return None


@given(body=v2_json_bodies())
def test_v2_json_decoder(body):
    decoded = refused_or_decoded(decode_v2_request, body, JSON)
    if decoded is not None:
        for name, value in decoded.inputs.tensors.items():
            assert isinstance(value, np.ndarray) and value.ndim <= 16, name


@given(request=v2_binary_bodies())
def test_v2_binary_decoder(request):
    body, headers = request
    refused_or_decoded(decode_v2_request, body, headers)


@given(body=st.binary(max_size=300), length=st.none() | st.text(max_size=6), encoding=st.sampled_from(["", "gzip", "identity"]))
def test_v2_decoder_on_raw_bytes(body, length, encoding):
    headers = {"content-type": "application/octet-stream", "content-encoding": encoding}
    if length is not None:
        headers["inference-header-content-length"] = length
    refused_or_decoded(decode_v2_request, body, headers)


@given(body=embed_bodies(), content_type=st.sampled_from(["application/json", "application/ld+json", "text/plain", ""]))
def test_embed_decoder(body, content_type):
    refused_or_decoded(decode_embed_request, body, {"content-type": content_type})


@given(body=classify_bodies())
def test_classify_decoder(body):
    refused_or_decoded(decode_classify_request, body, JSON)


@given(body=rank_bodies("clip"))
def test_rank_decoder(body):
    refused_or_decoded(decode_rank_request, body, JSON)


LIMITS = ImageLimits(max_pixels=4_000_000, max_request_pixels=6_000_000, max_aspect_ratio=100)
PIPELINES = {scaled: ImagePreprocessor(SPECS["clip"], limits=LIMITS, jpeg_scaled_decode=scaled) for scaled in (False, True)}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # headers claiming any size; the cap refuses them
@given(images=st.lists(encoded_images(), min_size=1, max_size=3), scaled=st.booleans())
def test_image_pipeline(images, scaled):
    pixels = refused_or_decoded(PIPELINES[scaled], images)
    if pixels is not None:
        assert pixels.shape == (len(images), 3, 224, 224) and pixels.dtype == np.float32
        assert np.isfinite(pixels).all()
