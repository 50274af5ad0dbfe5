"""Tiny offline tokenizers (the hub is unreachable in CI and on air-gapped machines).

``make_clip_tokenizer`` builds a real byte-level BPE CLIP tokenizer over a small vocab
(every byte, every byte with ``</w>``, and a few merges), so words split into a handful of
tokens and long texts run past 77 tokens. ``make_bert_tokenizer`` builds a WordPiece
tokenizer over a small vocab. ``make_siglip_tokenizer`` builds a SentencePiece-style
(Unigram, metaspace) tokenizer shaped like SigLIP's: lowercasing, an eos token appended,
and that eos token as the pad token.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "a", "photo", "of", "cat", "dog", "the", "an", "astronaut", "coffee", "rocket",
    "cup", "in", "space", "on", "table", "picture", "with", "and", "is", "this",
]


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A small CLIP BPE vocab (ids < 600) and merges that build a few whole words."""
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in ("photo", "cat", "the", "of"):
        current = word[0]
        for i, ch in enumerate(word[1:], start=1):
            nxt = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append((current, nxt))
            current = current + nxt
            if current not in vocab_list:
                vocab_list.append(current)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab_list)}, merges


def make_clip_tokenizer(folder: Path | None = None):
    """A CLIPTokenizer (saved into ``folder`` when given). bos/eos ids: see the returned
    tokenizer's ``bos_token_id`` / ``eos_token_id``; vocab size ``len(tokenizer)``."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    if folder is not None:
        tokenizer.save_pretrained(folder)
    return tokenizer


def bert_vocab() -> list[str]:
    """A small WordPiece vocab: specials, letters, ##letters, and common words."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punct = list(".,!?'-")
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + letters + ["##" + c for c in letters] + punct


def make_bert_tokenizer(folder: Path | None = None, max_length: int = 64):
    """A BertTokenizer over :func:`bert_vocab` (saved into ``folder`` when given)."""
    from transformers import BertTokenizer

    vocab = {tok: i for i, tok in enumerate(bert_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, model_max_length=max_length)
    if folder is not None:
        tokenizer.save_pretrained(folder)
    return tokenizer


def siglip_vocab() -> list[tuple[str, float]]:
    """A small Unigram vocab (piece, log-probability): ``<pad>``, ``</s>``, ``<unk>`` (ids
    0-2, as in SigLIP's), whole words, then letters and digits alone and word-initial."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    words = ["\u2581" + w for w in WORDS if len(w) > 1]
    return (
        [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0)]
        + [(w, -2.0) for w in words]
        + [(c, -5.0) for c in chars]
        + [("\u2581" + c, -5.5) for c in chars]
    )


def make_siglip_tokenizer(folder: Path | None = None, max_length: int = 64):
    """A fast tokenizer shaped like SigLIP's (pad = eos = ``</s>``, id 1; ``<unk>`` id 2),
    saved into ``folder`` when given. SigLIP's own ``SiglipTokenizer`` is SentencePiece
    only; this one is the same kind of model in ``tokenizer.json``."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.Unigram(siglip_vocab(), unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" +", " ")])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", pad_token="</s>", unk_token="<unk>", model_max_length=max_length
    )
    if folder is not None:
        tokenizer.save_pretrained(folder)
    return tokenizer
