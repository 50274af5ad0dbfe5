"""Tiny offline tokenizers for tests: see :mod:`mmship.testing.tokenizers`."""

from mmship.testing.tokenizers import (  # noqa: F401
    WORDS,
    bert_vocab,
    clip_vocab_and_merges,
    make_bert_tokenizer,
    make_clip_tokenizer,
    make_siglip_tokenizer,
)
