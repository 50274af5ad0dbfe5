"""Token-id arrays sent by clients -> the model's text inputs, as if the server had tokenized.

A client may send a text already tokenized (OpenAI's ``input: [[int, ...]]``). The ids are
the model's own tokenizer's, for the text alone (``tokenizer.encode(text,
add_special_tokens=False)``); the server adds the model's special tokens (CLIP's
``<|startoftext|>`` ... ``<|endoftext|>``, BERT's ``[CLS]`` ... ``[SEP]``) unless the array
already starts and ends with them, truncates like a text (or refuses when the model does
not truncate), and pads with the tokenizer's pad id on its padding side. Ids outside the
vocabulary are refused: they are not this model's (OpenAI's tiktoken ids, for instance).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmship.core.errors import RequestFieldError
from mmship.preprocess.tokens import TOKENIZER_FILE, TextTokenizer, TokenizedTexts

_NOT_OURS_HINT = (
    "send ids of this model's tokenizer, or send the text itself; LangChain's OpenAIEmbeddings sends OpenAI's "
    "tiktoken ids unless it is built with check_embedding_ctx_length=False"
)


class TokenIdPacker:
    """Packs token-id arrays into ``input_ids`` / ``attention_mask`` / ``token_type_ids``
    exactly as :class:`~mmship.preprocess.tokens.TextTokenizer` lays out a text's tokens."""

    def __init__(self, folder: Path | str, tokenizer: TextTokenizer) -> None:
        """
        :param folder: the folder holding ``tokenizer.json`` (the bundle's ``processor/``).
        :param tokenizer: the server's text tokenizer (pad id, sides, max length).
        """
        from tokenizers import Tokenizer

        bare = Tokenizer.from_file(str(Path(folder) / TOKENIZER_FILE))
        bare.no_padding()
        bare.no_truncation()
        self.tokenizer = tokenizer
        #: One past the tokenizer's largest id (added tokens included).
        self.vocab_size = max(bare.get_vocab(with_added_tokens=True).values()) + 1
        self.prefix, self.suffix = _special_tokens(bare)

    def _body(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` without the model's special tokens when it already has them."""
        p, s = self.prefix, self.suffix
        if (p or s) and len(ids) >= len(p) + len(s) and ids[: len(p)].tolist() == p and ids[len(ids) - len(s):].tolist() == s:
            return ids[len(p): len(ids) - len(s)]
        return ids

    def _ids(self, sequence: Sequence[int], where: str) -> np.ndarray:
        """One array as int64, every id checked against the vocabulary."""
        try:
            ids = np.asarray(sequence, dtype=np.int64).reshape(-1)
            outside = (ids < 0) | (ids >= self.vocab_size)
            bad = sequence[int(np.argmax(outside))] if outside.any() else None
        except (OverflowError, TypeError, ValueError):  # past int64: find it the slow way
            bad = next((v for v in sequence if not 0 <= v < self.vocab_size), sequence[0])
        if bad is not None:
            raise RequestFieldError(
                f"{where} has token id {bad}; this model's vocabulary is ids 0..{self.vocab_size - 1}",
                hint=_NOT_OURS_HINT, field="input",
            )
        return ids

    def pack(self, sequences: Sequence[Sequence[int]], where: str = "input") -> TokenizedTexts:
        """The model's text inputs for ``sequences`` (int64 ``[N, L]``) and which were cut.

        :raises RequestFieldError: for an id outside the vocabulary, or an array longer than
            the model takes when it does not truncate.
        """
        spec = self.tokenizer.spec
        settings = self.tokenizer.settings
        capacity = spec.max_length - len(self.prefix) - len(self.suffix)
        prefix = np.asarray(self.prefix, dtype=np.int64)
        suffix = np.asarray(self.suffix, dtype=np.int64)
        rows: list[np.ndarray] = []
        truncated: list[bool] = []
        for i, sequence in enumerate(sequences):
            body = self._body(self._ids(sequence, f"{where}[{i}]"))
            cut = len(body) > capacity
            if cut and not spec.truncation:
                raise RequestFieldError(
                    f"{where}[{i}] is {len(body)} tokens; this model takes at most {capacity} besides its special tokens",
                    hint="shorten the text", field="input",
                )
            if cut:
                body = body[len(body) - capacity:] if settings.truncation_side == "left" else body[:capacity]
            rows.append(np.concatenate([prefix, body, suffix]))
            truncated.append(cut)
        width = spec.max_length if spec.padding == "max_length" else max(len(r) for r in rows)
        ids_array = np.full((len(rows), width), self.tokenizer.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            start = width - len(row) if settings.padding_side == "left" else 0
            ids_array[r, start:start + len(row)] = row
            mask[r, start:start + len(row)] = 1
        arrays = {"input_ids": ids_array, "attention_mask": mask, "token_type_ids": np.zeros_like(ids_array)}
        return TokenizedTexts(arrays, truncated)


def _special_tokens(bare: object) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's post-processor puts before and after a text."""
    probe = "a"
    plain = bare.encode(probe, add_special_tokens=False).ids  # type: ignore[attr-defined]
    full = bare.encode(probe, add_special_tokens=True).ids  # type: ignore[attr-defined]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    return [], []
