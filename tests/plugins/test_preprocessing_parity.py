"""mmship's pixel pipeline against the HF image processors (Pillow backend) on real photos.

Acceptance: cosine >= 0.9999 per image; the pipeline is in fact bit-identical, so the
tests also require a max abs diff of 0.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mmship.core.specs import ImagePreprocessSpec
from mmship.plugins.stages.alignment_check import cosine
from mmship.preprocess.pixels import ImagePreprocessor

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

#: What align_preprocess must produce for each processor's defaults (checked in
#: test_align_preprocess.py); written out here so these tests stand on the runtime alone.
SPECS = {
    "clip": ImagePreprocessSpec(resize_shortest_edge=224, resample="bicubic", crop_height=224, crop_width=224,
                                mean=CLIP_MEAN, std=CLIP_STD),
    "vit": ImagePreprocessSpec(resize_height=224, resize_width=224, resample="bilinear",
                               mean=[0.5] * 3, std=[0.5] * 3),
    "flava": ImagePreprocessSpec(resize_height=224, resize_width=224, resample="bicubic", crop_height=224,
                                 crop_width=224, mean=CLIP_MEAN, std=CLIP_STD),
}




def reference(processor, data: bytes) -> np.ndarray:
    """The HF processor's pixels for encoded ``data``. ViT and FLAVA leave do_convert_rgb
    unset and fail on non-RGB images, so RGB conversion is asked for explicitly (CLIP does
    it by default)."""
    out = processor(Image.open(io.BytesIO(data)), do_convert_rgb=True, return_tensors="np")
    return np.asarray(out["pixel_values"][0])


@pytest.mark.parametrize("kind", ["clip", "vit", "flava"])
def test_pixels_match_hf_processor(kind, photo_case, photo_bytes, hf_image_processors):
    data = photo_bytes[photo_case]
    expected = reference(hf_image_processors[kind], data)
    got = ImagePreprocessor(SPECS[kind])([data])[0]
    assert got.dtype == np.float32 and got.shape == expected.shape == (3, 224, 224)
    assert cosine(got, expected) >= 0.9999
    assert float(np.abs(got - expected).max()) == 0.0, "expected bit-identical pixels"


def test_hf_defaults_are_the_specs_used_here(hf_image_processors):
    clip, vit, flava = (hf_image_processors[k] for k in ("clip", "vit", "flava"))
    assert (clip.size.shortest_edge, clip.crop_size.height, int(clip.resample)) == (224, 224, 3)
    assert (vit.size.height, vit.size.width, int(vit.resample), vit.do_center_crop) == (224, 224, 2, None)
    assert (flava.size.height, flava.crop_size.height, int(flava.resample)) == (224, 224, 3)
    assert list(flava.image_mean) == CLIP_MEAN and list(vit.image_std) == [0.5] * 3


def test_rgb_decoded_input_equals_bytes_input(photo_bytes):
    data = [photo_bytes[name] for name in ("chelsea-jpeg", "rocket", "grayscale", "rgba", "palette")]
    decoded = [Image.open(io.BytesIO(d)) for d in data]
    prep = ImagePreprocessor(SPECS["clip"])
    np.testing.assert_array_equal(prep(decoded), prep(data))


def test_batch_is_nchw_float32_contiguous(photo_bytes):
    images = [photo_bytes["chelsea"], photo_bytes["tall-crop"], photo_bytes["cmyk-jpeg"]]
    batch = ImagePreprocessor(SPECS["clip"])(images)
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == np.float32 and batch.flags.c_contiguous


@pytest.mark.parametrize("case", ["chelsea", "upscale-tiny", "tall-crop"])
def test_other_filters_and_sizes_match(case, photo_bytes, hf_image_processors):
    """Non-default settings: every Pillow filter, odd crop sizes, a crop larger than the
    resize (HF zero-pads), no crop, rescale only."""
    from transformers import CLIPImageProcessorPil

    data = photo_bytes[case]
    for resample, name in [(0, "nearest"), (1, "lanczos"), (2, "bilinear"), (4, "box"), (5, "hamming")]:
        hf = CLIPImageProcessorPil(resample=resample, size={"shortest_edge": 97}, crop_size={"height": 91, "width": 65})
        spec = ImagePreprocessSpec(resize_shortest_edge=97, resample=name, crop_height=91, crop_width=65,
                                   mean=CLIP_MEAN, std=CLIP_STD)
        np.testing.assert_array_equal(ImagePreprocessor(spec)([data])[0], reference(hf, data))
    hf = CLIPImageProcessorPil(size={"shortest_edge": 100}, crop_size={"height": 131, "width": 120})
    spec = ImagePreprocessSpec(resize_shortest_edge=100, crop_height=131, crop_width=120, mean=CLIP_MEAN, std=CLIP_STD)
    np.testing.assert_array_equal(ImagePreprocessor(spec)([data])[0], reference(hf, data))
    hf = CLIPImageProcessorPil(do_center_crop=False, do_normalize=False)
    spec = ImagePreprocessSpec(resize_shortest_edge=224)
    np.testing.assert_array_equal(ImagePreprocessor(spec)([data])[0], reference(hf, data))


def test_resize_without_antialias_would_drift(photo_bytes, hf_image_processors):
    """Why antialias matters: point-sampling a large photo down (no filter support
    scaling) lands far from the HF pixels, well under the 0.9999 bar."""
    data = photo_bytes["astronaut-square"]
    expected = reference(hf_image_processors["clip"], data)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    rows = (np.arange(224) + 0.5) * image.height / 224
    cols = (np.arange(224) + 0.5) * image.width / 224
    pixels = np.asarray(image)[rows.astype(int)][:, cols.astype(int)]
    naive = ImagePreprocessor(SPECS["clip"]).values(pixels)
    assert cosine(naive, expected) < 0.9999
