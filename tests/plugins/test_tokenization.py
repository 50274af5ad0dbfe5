"""mmship's tokenizer (tokenizers library on tokenizer.json) against the HF tokenizers with
``padding="max_length", truncation=True``: identical ids and masks, truncation flags."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mmship.core.errors import BundleError, InputSpecError
from mmship.core.specs import TextPreprocessSpec
from mmship.preprocess.tokens import TextTokenizer, read_tokenizer_settings, tokenize
from tests.helpers.tokenizers import WORDS

TEXTS = [
    "a photo of a cat",
    "",
    "   The   ASTRONAUT\tin\nSpace!!  ",
    "It's a dog's life, isn't it? 1234567 -- 3.14",
    "café naïve Ünïcödé 東京 😀",
    "special tokens inline: <|startoftext|> <|endoftext|> [CLS] [SEP] [PAD]",
    " ".join(WORDS * 5),                      # ~100 words: past 77 tokens
    "photo " * 120,                           # repeated whole-word tokens
    "supercalifragilisticexpialidocious" * 12,  # one long word
    "x",
]


@pytest.fixture(params=["clip", "bert"])
def tokenizer_dir(request, clip_tokenizer_dir, bert_tokenizer_dir):
    return {"clip": clip_tokenizer_dir, "bert": bert_tokenizer_dir}[request.param]


def hf_tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.parametrize("max_length", [77, 16, 5])
@pytest.mark.parametrize("padding", ["max_length", "longest"])
def test_ids_and_masks_identical_to_hf(tokenizer_dir, max_length, padding):
    hf = hf_tokenizer(tokenizer_dir)
    expected = hf(TEXTS, padding=padding, truncation=True, max_length=max_length, return_tensors="np")
    got = TextTokenizer(tokenizer_dir, TextPreprocessSpec(max_length=max_length, padding=padding))(TEXTS)
    for key in expected:  # input_ids, attention_mask (+ token_type_ids for BERT)
        assert got[key].dtype == np.int64
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    if padding == "max_length":
        assert got.input_ids.shape == (len(TEXTS), max_length)


def test_truncation_flags_match_untruncated_lengths(tokenizer_dir):
    hf = hf_tokenizer(tokenizer_dir)
    full = hf(TEXTS)["input_ids"]
    for max_length in (77, 16):
        got = TextTokenizer(tokenizer_dir, TextPreprocessSpec(max_length=max_length))(TEXTS)
        assert got.truncated == [len(ids) > max_length for ids in full]
    assert any(len(ids) > 77 for ids in full), "the probe texts must include one longer than 77 tokens"


def test_clip_truncation_keeps_bos_and_eos(clip_tokenizer_dir):
    hf = hf_tokenizer(clip_tokenizer_dir)
    got = TextTokenizer(clip_tokenizer_dir, TextPreprocessSpec(max_length=77))([" ".join(WORDS * 5), "a cat"])
    long, short = got.input_ids
    assert got.truncated == [True, False]
    assert long[0] == hf.bos_token_id and long[-1] == hf.eos_token_id and got.attention_mask[0].all()
    assert short[0] == hf.bos_token_id and short[int(got.attention_mask[1].sum()) - 1] == hf.eos_token_id
    assert (short[int(got.attention_mask[1].sum()):] == hf.pad_token_id).all()


def test_bert_specials_and_pad(bert_tokenizer_dir):
    hf = hf_tokenizer(bert_tokenizer_dir)
    tok = TextTokenizer(bert_tokenizer_dir, TextPreprocessSpec(max_length=8))
    got = tok(["a photo of a cat in space on the table", "dog"])
    assert tok.pad_id == hf.pad_token_id == 0
    assert got.input_ids[0, 0] == hf.cls_token_id and got.input_ids[0, -1] == hf.sep_token_id
    dog = hf.convert_tokens_to_ids("dog")
    np.testing.assert_array_equal(got.input_ids[1, :3], [hf.cls_token_id, dog, hf.sep_token_id])
    assert (got.input_ids[1, 3:] == 0).all() and got.attention_mask[1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]


def test_pad_id_is_the_tokenizer_pad_token(clip_tokenizer_dir):
    hf = hf_tokenizer(clip_tokenizer_dir)
    tok = TextTokenizer(clip_tokenizer_dir, TextPreprocessSpec(max_length=77))
    assert tok.pad_id == hf.pad_token_id and tok.pad_token == hf.pad_token
    assert read_tokenizer_settings(clip_tokenizer_dir).model_max_length == 77


def test_left_padding_and_truncation_sides_follow_tokenizer_config(tmp_path, bert_tokenizer_dir):
    from transformers import AutoTokenizer

    folder = tmp_path / "left"
    shutil.copytree(bert_tokenizer_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(padding_side="left", truncation_side="left")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    hf = AutoTokenizer.from_pretrained(str(folder))
    assert hf.padding_side == "left"
    expected = hf(TEXTS, padding="max_length", truncation=True, max_length=12, return_tensors="np")
    got = tokenize(TEXTS, folder, TextPreprocessSpec(max_length=12))
    np.testing.assert_array_equal(got.input_ids, expected["input_ids"])
    np.testing.assert_array_equal(got.attention_mask, expected["attention_mask"])


def test_lowercase_is_applied_only_when_the_tokenizer_does_not(clip_tokenizer_dir):
    spec = TextPreprocessSpec(max_length=16, lowercase=True)
    tok = TextTokenizer(clip_tokenizer_dir, spec)
    assert tok.lowercase is False  # CLIP's normalizer already lowercases
    np.testing.assert_array_equal(tok(["A PHOTO"]).input_ids, tok(["a photo"]).input_ids)


def test_lowercase_is_applied_by_mmship_when_the_tokenizer_has_no_lowercasing_normalizer(clip_tokenizer_dir, tmp_path):
    import shutil

    folder = tmp_path / "no-lowercase"
    shutil.copytree(clip_tokenizer_dir, folder)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["normalizer"] = None
    (folder / "tokenizer.json").write_text(json.dumps(data))
    tok = TextTokenizer(folder, TextPreprocessSpec(max_length=16, lowercase=True))
    assert tok.lowercase is True
    np.testing.assert_array_equal(tok(["A PHOTO"]).input_ids, tok(["a photo"]).input_ids)
    assert TextTokenizer(folder, TextPreprocessSpec(max_length=16, lowercase=False)).lowercase is False


def test_errors(tmp_path, clip_tokenizer_dir):
    with pytest.raises(BundleError, match="no tokenizer.json") as info:
        TextTokenizer(tmp_path, TextPreprocessSpec(max_length=77))
    assert "save_pretrained" in info.value.hint
    tok = TextTokenizer(clip_tokenizer_dir, TextPreprocessSpec(max_length=77))
    with pytest.raises(InputSpecError, match="text 1 is a int"):
        tok(["fine", 3])
    strict = TextTokenizer(clip_tokenizer_dir, TextPreprocessSpec(max_length=8, truncation=False))
    assert strict(["a cat"]).input_ids.shape == (1, 8)
    with pytest.raises(InputSpecError, match="more than this model's 8"):
        strict(["a cat", " ".join(WORDS)])


def test_empty_batch_and_threads(clip_tokenizer_dir):
    tok = TextTokenizer(clip_tokenizer_dir, TextPreprocessSpec(max_length=77))
    empty = tok([])
    assert empty.input_ids.shape == (0, 77) and empty.truncated == []
    expected = tok(TEXTS).input_ids
    with ThreadPoolExecutor(4) as pool:
        for result in pool.map(tok, [TEXTS] * 16):
            np.testing.assert_array_equal(result.input_ids, expected)
