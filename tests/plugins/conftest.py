"""Fixtures for the preprocessing, tokenization and align tests.

Processor folders are built here from transformers' own defaults (``save_pretrained``) and
the tiny offline tokenizers; real photos come from scikit-image's sample data.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mmship.core.adapter import Adapter
from mmship.core.specs import GraphSpec, TensorSpec
from tests.helpers.tokenizers import make_bert_tokenizer, make_clip_tokenizer


def encode(image, fmt: str = "PNG") -> bytes:
    """``image`` encoded as ``fmt`` bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _photo_cases() -> dict[str, tuple[object, str]]:
    """Name -> (PIL image, encoding): sizes, aspect ratios and modes a server meets."""
    import skimage.data
    from PIL import Image

    chelsea = Image.fromarray(skimage.data.chelsea())      # 451x300
    astronaut = Image.fromarray(skimage.data.astronaut())  # 512x512
    coffee = Image.fromarray(skimage.data.coffee())        # 600x400
    rocket = Image.fromarray(skimage.data.rocket())        # 640x427
    camera = Image.fromarray(skimage.data.camera())        # 512x512, grayscale
    rgba = np.array(coffee.convert("RGBA"))
    rgba[..., 3] = np.linspace(0, 255, rgba.shape[1]).astype(np.uint8)[None, :]
    la = camera.convert("LA")
    la.putalpha(Image.fromarray(np.tile(np.linspace(255, 0, 512).astype(np.uint8), (512, 1))))
    palette_t = chelsea.convert("P", palette=Image.Palette.ADAPTIVE)
    palette_t.info["transparency"] = 0
    return {
        "chelsea-jpeg": (chelsea, "JPEG"),
        "chelsea": (chelsea, "PNG"),
        "astronaut-square": (astronaut, "PNG"),
        "coffee": (coffee, "PNG"),
        "rocket": (rocket, "JPEG"),
        "upscale-small": (chelsea.resize((64, 43)), "PNG"),
        "upscale-tiny": (coffee.resize((7, 5)), "PNG"),
        "tall-crop": (rocket.crop((260, 0, 380, 427)), "PNG"),
        "wide-crop": (astronaut.crop((0, 200, 512, 260)), "PNG"),
        "odd-size": (coffee.resize((225, 301)), "PNG"),
        "grayscale": (camera, "PNG"),
        "grayscale-jpeg": (camera, "JPEG"),
        "grayscale-alpha": (la, "PNG"),
        "rgba": (Image.fromarray(rgba), "PNG"),
        "palette": (chelsea.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "palette-transparent": (palette_t, "PNG"),
        "cmyk-jpeg": (astronaut.convert("CMYK"), "JPEG"),
    }


@pytest.fixture(scope="session")
def photo_bytes() -> dict[str, bytes]:
    """Encoded test photos by case name (see ``_photo_cases``)."""
    return {name: encode(image, fmt) for name, (image, fmt) in _photo_cases().items()}


#: Case names of :func:`_photo_cases`, in order.
PHOTO_CASES = [
    "chelsea-jpeg", "chelsea", "astronaut-square", "coffee", "rocket", "upscale-small", "upscale-tiny",
    "tall-crop", "wide-crop", "odd-size", "grayscale", "grayscale-jpeg", "grayscale-alpha", "rgba",
    "palette", "palette-transparent", "cmyk-jpeg",
]


@pytest.fixture(params=PHOTO_CASES)
def photo_case(request) -> str:
    """Each photo case name in turn."""
    return request.param


def _quiet_processor(kind: str):
    """The Pillow-backend HF image processor of ``kind`` with its default settings."""
    from transformers import (
        CLIPImageProcessorPil,
        FlavaImageProcessorPil,
        ViTImageProcessorPil,
    )

    return {"clip": CLIPImageProcessorPil, "vit": ViTImageProcessorPil, "flava": FlavaImageProcessorPil}[kind]()


@pytest.fixture(scope="session")
def hf_image_processors() -> dict[str, object]:
    """Reference HF image processors (Pillow backend, defaults) by kind."""
    return {kind: _quiet_processor(kind) for kind in ("clip", "vit", "flava")}


@pytest.fixture(scope="session")
def clip_processor_dir(tmp_path_factory) -> Path:
    """A folder as ``CLIPProcessor.save_pretrained`` writes it (processor_config.json +
    tokenizer.json), with the tiny CLIP BPE tokenizer."""
    from transformers import CLIPProcessor

    folder = tmp_path_factory.mktemp("clip-processor")
    CLIPProcessor(image_processor=_quiet_processor("clip"), tokenizer=make_clip_tokenizer()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def vit_processor_dir(tmp_path_factory) -> Path:
    """ViT image processor defaults (preprocessor_config.json) + a BERT WordPiece tokenizer."""
    folder = tmp_path_factory.mktemp("vit-processor")
    _quiet_processor("vit").save_pretrained(folder)
    make_bert_tokenizer(folder, max_length=64)
    return folder


@pytest.fixture(scope="session")
def flava_processor_dir(tmp_path_factory) -> Path:
    """FLAVA image processor defaults + a BERT WordPiece tokenizer."""
    folder = tmp_path_factory.mktemp("flava-processor")
    _quiet_processor("flava").save_pretrained(folder)
    make_bert_tokenizer(folder, max_length=64)
    return folder


@pytest.fixture(scope="session")
def clip_tokenizer_dir(tmp_path_factory) -> Path:
    """Only the tiny CLIP tokenizer (tokenizer.json + tokenizer_config.json)."""
    folder = tmp_path_factory.mktemp("clip-tokenizer")
    make_clip_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def bert_tokenizer_dir(tmp_path_factory) -> Path:
    """Only the tiny BERT tokenizer (model_max_length 64)."""
    folder = tmp_path_factory.mktemp("bert-tokenizer")
    make_bert_tokenizer(folder, max_length=64)
    return folder


@pytest.fixture
def make_adapter() -> Callable[..., Adapter]:
    """``make_adapter(image=True, text=True, text_length=-1, **attributes)``: an adapter
    instance whose input specs take images and/or texts."""

    def factory(image: bool = True, text: bool = True, text_length: int = -1, **attributes) -> Adapter:
        inputs = []
        if image:
            inputs.append(TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, 224, 224],
                                     modality="image", layout="NCHW"))
        if text:
            inputs.append(TensorSpec(name="input_ids", dtype="int64", shape=[-1, text_length], modality="text"))
            inputs.append(TensorSpec(name="attention_mask", dtype="int64", shape=[-1, text_length], modality="text"))

        class FakeAdapter(Adapter):
            name = "fake"

            def input_specs(self) -> list[TensorSpec]:
                return inputs

            def output_specs(self) -> list[TensorSpec]:
                return [TensorSpec(name="embeds", dtype="float32", shape=[-1, 8], modality="embedding")]

            def graph_specs(self) -> list[GraphSpec]:
                return [GraphSpec(name="all", inputs=[s.name for s in inputs], outputs=["embeds"])]

            def check_dimensions(self, weight_shapes=None) -> None:
                return None

        for key, value in attributes.items():
            setattr(FakeAdapter, key, value)
        return FakeAdapter({})

    return factory
