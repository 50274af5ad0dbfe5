"""Offline tokenizers (the hub is unreachable in CI and on air-gapped machines).

``make_clip_tokenizer`` builds a byte-level BPE CLIP tokenizer over a small stand-in vocab
(every byte, every byte with ``</w>``, and a few merges), so words split into a handful of
tokens and long texts run past 77 tokens. ``make_real_clip_tokenizer`` builds the true
49408-token CLIP tokenizer from OpenAI's BPE merges as shipped inside the
``open-clip-torch`` wheel, so captions have their real length. ``make_bert_tokenizer``
builds a WordPiece tokenizer over a small vocab. ``make_siglip_tokenizer`` builds a
SentencePiece-style (Unigram, metaspace) tokenizer shaped like SigLIP's: lowercasing, an eos
token appended, and that eos token as the pad token.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import sys
import zipfile
from functools import lru_cache
from pathlib import Path

from mmship.core.errors import MmshipError

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


#: Where OpenAI's CLIP BPE merges live inside the ``open-clip-torch`` wheel and package.
CLIP_BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
#: sha256 of ``bpe_simple_vocab_16e6.txt.gz`` (the same bytes in open-clip-torch 2.20 to 3.3).
CLIP_BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
#: The merges CLIP uses: lines 1..48894 of the file (line 0 is a version header).
CLIP_BPE_MERGES = 49152 - 256 - 2
#: The wheel ``make install-dev`` downloads (``pip download --no-deps``: installing it
#: would pull torchvision and a CUDA build of torch).
OPEN_CLIP_REQUIREMENT = "open-clip-torch==3.3.0"
#: Environment variable naming a ``bpe_simple_vocab_16e6.txt.gz`` or an open-clip-torch wheel.
CLIP_BPE_ENV = "MMSHIP_CLIP_BPE"


class ClipVocabularyError(MmshipError):
    """The real CLIP BPE vocabulary could not be found or is not the expected file."""


def open_clip_wheel_dir() -> Path:
    """Where ``make install-dev`` puts the open-clip-torch wheel: ``<venv>/share/mmship/wheels``."""
    return Path(sys.prefix) / "share" / "mmship" / "wheels"


def clip_bpe_candidates() -> list[Path]:
    """Files that may hold the CLIP BPE merges, in the order they are tried: the file named
    by ``$MMSHIP_CLIP_BPE``, the installed ``open_clip`` package (found, not imported), then
    any open-clip-torch wheel in :func:`open_clip_wheel_dir`."""
    candidates: list[Path] = []
    if os.environ.get(CLIP_BPE_ENV):
        candidates.append(Path(os.environ[CLIP_BPE_ENV]))
    spec = importlib.util.find_spec("open_clip")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(Path(location) / Path(CLIP_BPE_MEMBER).name)
    candidates += sorted(open_clip_wheel_dir().glob("open_clip_torch-*.whl"), reverse=True)
    return candidates


def read_clip_bpe(source: str | Path | None = None) -> bytes:
    """The gzipped CLIP BPE file from ``source`` (a ``.txt.gz`` or an open-clip-torch
    wheel) or the first of :func:`clip_bpe_candidates` that exists; checked by sha256."""
    paths = [Path(source)] if source is not None else clip_bpe_candidates()
    found = next((path for path in paths if path.is_file()), None)
    if found is None:
        raise ClipVocabularyError(
            f"expected the CLIP BPE vocabulary ({CLIP_BPE_MEMBER}); got no such file among "
            f"{[str(p) for p in paths] or 'no candidates'}",
            hint=f"run `make install-dev`, or `pip download --no-deps {OPEN_CLIP_REQUIREMENT} "
            f"--dest {open_clip_wheel_dir()}`, or set {CLIP_BPE_ENV} to the .txt.gz file",
        )
    if zipfile.is_zipfile(found):
        with zipfile.ZipFile(found) as wheel:
            if CLIP_BPE_MEMBER not in wheel.namelist():
                raise ClipVocabularyError(
                    f"expected {CLIP_BPE_MEMBER} inside {found}; got a zip without it",
                    hint=f"point at an open-clip-torch wheel ({OPEN_CLIP_REQUIREMENT})",
                )
            data = wheel.read(CLIP_BPE_MEMBER)
    else:
        data = found.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CLIP_BPE_SHA256:
        raise ClipVocabularyError(
            f"expected {CLIP_BPE_MEMBER} with sha256 {CLIP_BPE_SHA256}; got {digest} from {found}",
            hint=f"use the file shipped in {OPEN_CLIP_REQUIREMENT} (it is OpenAI's, unchanged)",
        )
    return data


@lru_cache(maxsize=4)
def real_clip_vocab_and_merges(source: str | Path | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """OpenAI's CLIP vocab (49408 ids) and BPE merges (48894): the 256 byte symbols, the
    same with ``</w>``, one symbol per merge, then ``<|startoftext|>`` and ``<|endoftext|>``."""
    lines = gzip.decompress(read_clip_bpe(source)).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : CLIP_BPE_MERGES + 1]]
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars] + ["".join(pair) for pair in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab_list)}, merges  # type: ignore[return-value]


def make_real_clip_tokenizer(folder: Path | None = None, source: str | Path | None = None):
    """The true CLIP tokenizer (49408 tokens, bos 49406, eos = pad 49407, 77 positions),
    built offline from the BPE merges in the open-clip-torch wheel (see :func:`read_clip_bpe`
    for ``source``); saved into ``folder`` when given."""
    from transformers import CLIPTokenizer

    vocab, merges = real_clip_vocab_and_merges(source)
    tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=77)
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
