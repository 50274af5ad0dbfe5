"""Token-id arrays packed as the tokenizer lays out the same texts: identical ids, masks and
type ids, special tokens added once, truncation and padding sides, ids outside the
vocabulary refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tokenizers import Tokenizer

from mmship.core.errors import RequestFieldError
from mmship.core.specs import TextPreprocessSpec
from mmship.preprocess.token_ids import TokenIdPacker
from mmship.preprocess.tokens import TextTokenizer
from tests.plugins.test_tokenization import TEXTS


@pytest.fixture(params=["clip", "bert"])
def tokenizer_dir(request, clip_tokenizer_dir, bert_tokenizer_dir):
    return {"clip": clip_tokenizer_dir, "bert": bert_tokenizer_dir}[request.param]


def bare_ids(folder, texts, special: bool = False) -> list[list[int]]:
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return [tokenizer.encode(text, add_special_tokens=special).ids for text in texts]


@pytest.mark.parametrize("max_length", [77, 16, 5])
@pytest.mark.parametrize("padding", ["max_length", "longest"])
def test_packed_ids_equal_the_tokenized_texts(tokenizer_dir, max_length, padding):
    tokenizer = TextTokenizer(tokenizer_dir, TextPreprocessSpec(max_length=max_length, padding=padding))
    expected = tokenizer(TEXTS)
    packer = TokenIdPacker(tokenizer_dir, tokenizer)
    for special in (False, True):
        got = packer.pack(bare_ids(tokenizer_dir, TEXTS, special))
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{key}, specials sent: {special}")
        assert got.truncated == expected.truncated


def test_truncation_and_padding_sides_follow_the_tokenizer(tmp_path, bert_tokenizer_dir):
    folder = tmp_path / "left"
    shutil.copytree(bert_tokenizer_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(padding_side="left", truncation_side="left")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = TextTokenizer(folder, TextPreprocessSpec(max_length=12))
    got = TokenIdPacker(folder, tokenizer).pack(bare_ids(folder, TEXTS))
    np.testing.assert_array_equal(got.input_ids, tokenizer(TEXTS).input_ids)
    np.testing.assert_array_equal(got.attention_mask, tokenizer(TEXTS).attention_mask)


def test_ids_outside_the_vocabulary_and_overlong_arrays_are_refused(clip_tokenizer_dir):
    tokenizer = TextTokenizer(clip_tokenizer_dir, TextPreprocessSpec(max_length=8, truncation=False))
    packer = TokenIdPacker(clip_tokenizer_dir, tokenizer)
    for bad in (-1, packer.vocab_size, 100_257, 2**70):
        with pytest.raises(RequestFieldError, match=f"token id {bad}; this model's vocabulary is ids 0..") as info:
            packer.pack([[1, 2], [3, bad]])
        assert info.value.field == "input" and "input[1]" in info.value.message
    with pytest.raises(RequestFieldError, match="7 tokens; this model takes at most 6"):
        packer.pack([[5] * 7])
    assert packer.pack([[5] * 6]).input_ids.shape == (1, 8)
