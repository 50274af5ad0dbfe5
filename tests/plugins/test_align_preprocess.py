"""The align stage: HF processor folders -> PreprocessSpec, measured against the HF processor."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mmship.core.builtins import BUILTIN_PLUGINS
from mmship.core.errors import BuildError
from mmship.core.manager import PluginManager
from mmship.core.specs import ImagePreprocessSpec, PreprocessSpec, TextPreprocessSpec
from mmship.plugins.stages import align_preprocess
from mmship.plugins.stages.align_preprocess import align, mmship_align_preprocess
from mmship.plugins.stages.alignment_check import check_alignment, measure_alignment, probe_images
from mmship.preprocess.pixels import ImagePreprocessor
from mmship.preprocess.tokens import TextTokenizer
from tests.helpers.tokenizers import make_clip_tokenizer
from tests.plugins.test_preprocessing_parity import SPECS


@pytest.mark.parametrize("kind", ["clip", "vit", "flava"])
def test_default_processors_give_the_expected_image_spec(kind, request, make_adapter):
    folder = request.getfixturevalue(f"{kind}_processor_dir")
    spec = mmship_align_preprocess(adapter=make_adapter(text=False), source=folder)
    assert spec.text is None
    assert spec.image == SPECS[kind]


def test_clip_folder_gives_image_and_text(clip_processor_dir, make_adapter):
    spec = align(make_adapter(), clip_processor_dir)
    assert spec.image.resize_shortest_edge == 224 and spec.image.output_size == (224, 224)
    assert spec.text.model_dump() == {
        "tokenizer_dir": "processor", "max_length": 77, "padding": "max_length", "truncation": True, "lowercase": True,
        # the token ids pad with CLIP's pad token (<|endoftext|>), the mask with 0
        "pad_ids": {"input_ids": TextTokenizer(clip_processor_dir, spec.text).pad_id, "attention_mask": 0},
        # no config.json in this folder: the tokenizer's vocabulary, added tokens included
        "vocab_size": len(make_clip_tokenizer()),
    }
    assert spec.text.pad_ids["input_ids"] == make_clip_tokenizer().pad_token_id != 0


def test_the_vocabulary_is_capped_by_the_models_own(clip_processor_dir, make_adapter, tmp_path):
    """Ids past the model's token embedding fail in the graph even when the tokenizer knows them."""
    import json
    import shutil

    folder = tmp_path / "clip"
    shutil.copytree(clip_processor_dir, folder)
    (folder / "config.json").write_text(json.dumps({"text_config": {"vocab_size": 100}, "vocab_size": 5000}))
    assert align(make_adapter(), folder).text.vocab_size == 100
    (folder / "config.json").write_text(json.dumps({"vocab_size": 99999}))
    assert align(make_adapter(), folder).text.vocab_size == len(make_clip_tokenizer())


def test_text_length_sources(vit_processor_dir, make_adapter):
    assert align(make_adapter(image=False), vit_processor_dir).text.max_length == 64  # model_max_length
    assert align(make_adapter(image=False, max_text_length=32), vit_processor_dir).text.max_length == 32
    assert align(make_adapter(image=False, max_text_length=512), vit_processor_dir).text.max_length == 64
    assert align(make_adapter(image=False, text_length=40), vit_processor_dir).text.max_length == 40
    with pytest.raises(BuildError, match="max_text_length 32 but its text inputs are 40"):
        align(make_adapter(image=False, text_length=40, max_text_length=32), vit_processor_dir)
    longest = align(make_adapter(image=False, text_padding="longest"), vit_processor_dir).text
    assert longest.padding == "longest"
    fixed = align(make_adapter(image=False, text_padding="longest", text_length=64), vit_processor_dir).text
    assert fixed.padding == "max_length"


def test_whole_hf_processor_matches_runtime(clip_processor_dir, photo_bytes, make_adapter):
    """End to end: CLIPProcessor(images, text, padding="max_length", truncation=True) vs
    the runtime built from the aligned spec."""
    from transformers import CLIPProcessor

    spec = align(make_adapter(), clip_processor_dir)
    names = ["chelsea-jpeg", "rocket", "tall-crop", "grayscale", "rgba", "palette-transparent"]
    texts = ["a photo of a cat", "the astronaut " * 60, "", "a photo of the coffee"] + ["x"] * 2
    processor = CLIPProcessor.from_pretrained(str(clip_processor_dir))
    expected = processor(images=[Image.open(io.BytesIO(photo_bytes[n])) for n in names], text=texts,
                         padding="max_length", truncation=True, max_length=77, return_tensors="np")
    pixels = ImagePreprocessor(spec.image)([photo_bytes[n] for n in names])
    tokens = TextTokenizer(clip_processor_dir, spec.text)(texts)
    np.testing.assert_array_equal(pixels, expected["pixel_values"])
    np.testing.assert_array_equal(tokens.input_ids, expected["input_ids"])
    np.testing.assert_array_equal(tokens.attention_mask, expected["attention_mask"])


@pytest.mark.parametrize("kind", ["clip", "vit", "flava"])
def test_measured_alignment_is_exact(kind, request, make_adapter):
    folder = request.getfixturevalue(f"{kind}_processor_dir")
    spec = align(make_adapter(), folder)
    report = measure_alignment(spec, folder)
    assert report.min_pixel_cosine >= 0.9999 and report.max_abs_diff == 0.0
    assert report.pixel_cosine.keys() >= {"gray.png", "rgba.png", "palette.png", "tiny-wide.png"}
    assert report.token_mismatches == []
    assert report.as_dict()["images"] == len(probe_images())


def test_drift_is_refused(clip_processor_dir):
    """A spec that resizes with the wrong filter (or without antialias-sized support)
    falls under the bar and fails the build with both figures named."""
    wrong = PreprocessSpec(image=SPECS["clip"].model_copy(update={"resample": "nearest"}))
    report = measure_alignment(wrong, clip_processor_dir)
    assert report.min_pixel_cosine < 0.9999
    with pytest.raises(BuildError, match="drifts from the HF processor"):
        check_alignment(report, clip_processor_dir)


def test_token_drift_is_refused(clip_processor_dir):
    spec = PreprocessSpec(text=TextPreprocessSpec(max_length=77, padding="longest"))
    report = measure_alignment(spec, clip_processor_dir)
    assert report.token_mismatches == []
    report.token_mismatches.append("input_ids differs for texts [3]")
    with pytest.raises(BuildError, match="tokenization drifts"):
        check_alignment(report, clip_processor_dir)


def test_tokenizer_json_that_hf_does_not_follow_is_refused(tmp_path, make_adapter):
    """transformers 5 rebuilds a CLIP tokenizer's pipeline from its class and ignores the
    file's normalizer; a tokenizer.json that differs (older hub files can) would make the
    server tokenize differently, so the build stops and says to re-save."""
    from transformers import AutoTokenizer

    from tests.helpers.tokenizers import make_clip_tokenizer

    folder = tmp_path / "drifted"
    make_clip_tokenizer(folder)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["normalizer"]["normalizers"] = [n for n in data["normalizer"]["normalizers"] if n["type"] != "Lowercase"]
    (folder / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(BuildError, match="tokenization drifts from the HF tokenizer") as info:
        align(make_adapter(image=False), folder)
    assert "re-save" in info.value.hint
    AutoTokenizer.from_pretrained(str(folder)).save_pretrained(folder)  # the fix the hint gives
    assert align(make_adapter(image=False), folder).text.max_length == 77


def test_legacy_feature_extractor_configs(tmp_path, make_adapter):
    """Hub files written before image processors: integer sizes whose meaning depends on
    the class (CLIP: shortest edge; ViT: square)."""
    clip = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": SPECS["clip"].mean,
            "image_std": SPECS["clip"].std, "resample": 3, "size": 224}
    vit = {"do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
           "image_mean": [0.5] * 3, "image_std": [0.5] * 3, "resample": 2, "size": 224}
    for name, config in (("clip", clip), ("vit", vit)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "preprocessor_config.json").write_text(json.dumps(config))
        spec = mmship_align_preprocess(adapter=make_adapter(text=False), source=folder)
        assert spec.image == SPECS[name], name


def test_unsupported_settings_are_named(tmp_path, clip_processor_dir, make_adapter):
    config = json.loads((clip_processor_dir / "processor_config.json").read_text())["image_processor"]
    for update, words in [({"size": {"shortest_edge": 224, "longest_edge": 448}}, "longest_edge"),
                          ({"do_pad": True, "pad_size": {"height": 256, "width": 256}}, "do_pad")]:
        folder = tmp_path / words
        folder.mkdir()
        (folder / "preprocessor_config.json").write_text(json.dumps({**config, **update}))
        with pytest.raises(BuildError, match=words):
            mmship_align_preprocess(adapter=make_adapter(text=False), source=folder)


def test_processor_size_must_match_the_model(tmp_path, make_adapter):
    from transformers import CLIPImageProcessorPil

    folder = tmp_path / "336"
    CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(folder)
    with pytest.raises(BuildError, match="makes 336x336 images but pixel_values takes 224x224"):
        mmship_align_preprocess(adapter=make_adapter(text=False), source=folder)
    uncropped = tmp_path / "uncropped"
    CLIPImageProcessorPil(do_center_crop=False).save_pretrained(uncropped)
    with pytest.raises(BuildError, match="image sizes vary"):
        mmship_align_preprocess(adapter=make_adapter(text=False), source=uncropped)


def test_missing_files(tmp_path, vit_processor_dir, bert_tokenizer_dir, make_adapter):
    assert mmship_align_preprocess(adapter=make_adapter(), source=tmp_path) is None  # nothing to read: decline
    with pytest.raises(BuildError, match="takes images but") as info:
        mmship_align_preprocess(adapter=make_adapter(), source=bert_tokenizer_dir)
    assert "save_pretrained" in info.value.hint
    vocab_only = tmp_path / "vocab-only"
    shutil.copytree(vit_processor_dir, vocab_only)
    (vocab_only / "tokenizer.json").unlink()
    (vocab_only / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(BuildError, match="no tokenizer.json"):
        mmship_align_preprocess(adapter=make_adapter(), source=vocab_only)
    image_only = mmship_align_preprocess(adapter=make_adapter(text=False), source=vocab_only)
    assert image_only.text is None and image_only.image is not None


def test_registered_as_builtin_plugin(vit_processor_dir, make_adapter):
    assert BUILTIN_PLUGINS["align-preprocess"] == "mmship.plugins.stages.align_preprocess"
    manager = PluginManager()
    record = manager.register(align_preprocess, "align-preprocess")
    assert record.status == "loaded" and record.hooks == ["mmship_align_preprocess"]
    spec = manager.hook.mmship_align_preprocess(adapter=make_adapter(), source=vit_processor_dir)
    assert isinstance(spec.image, ImagePreprocessSpec) and spec.text.max_length == 64
    assert PreprocessSpec.model_validate(spec.model_dump()) == spec  # survives the manifest
