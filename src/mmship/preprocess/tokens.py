"""mmship's own text pipeline: texts -> ``input_ids`` / ``attention_mask`` as the HF tokenizer.

Uses the ``tokenizers`` library on the bundle's ``tokenizer.json`` (no transformers). The
HF tokenizers of transformers 5 are that same Rust tokenizer; called with
``padding="max_length", truncation=True, max_length=L`` they set exactly this on it
(``TokenizersBackend.set_truncation_and_padding``):

* truncation: ``max_length=L``, ``stride=0``, ``strategy="longest_first"``, direction
  ``truncation_side``; the post-processor's special tokens (CLIP ``<|startoftext|>`` /
  ``<|endoftext|>``, BERT ``[CLS]`` / ``[SEP]``) are reserved first, so a truncated CLIP text
  still ends with its eos token;
* padding: length ``L`` (``None`` for ``longest``), direction ``padding_side``, the pad
  token and its id, pad type id 0;
* ``encode_special_tokens`` from ``split_special_tokens``.

``pad_token``, ``padding_side``, ``truncation_side`` and ``split_special_tokens`` are read
from ``tokenizer_config.json`` (then ``special_tokens_map.json``), where HF reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmship.core.errors import BundleError, InputSpecError
from mmship.core.specs import TextPreprocessSpec

TOKENIZER_FILE = "tokenizer.json"
#: The tokenizer's outputs that are padded with 0 (every other one, ``input_ids``, with the
#: tokenizer's pad id); a graph input fed from texts has one of these names.
ZERO_PADDED_OUTPUTS = ("attention_mask", "token_type_ids")


def tokenizer_pad_value(name: str, pad_id: int) -> int:
    """What mmship's tokenizer pads its output ``name`` with: 0 for the attention mask and
    the token type ids, ``pad_id`` (the tokenizer's pad token) for the token ids."""
    return 0 if name in ZERO_PADDED_OUTPUTS else pad_id


@dataclass(frozen=True)
class TokenizerSettings:
    """What ``tokenizer_config.json`` says beyond ``tokenizer.json``."""

    pad_token: str | None = None
    padding_side: str = "right"
    truncation_side: str = "right"
    split_special_tokens: bool = False
    model_max_length: int | None = None


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # serialized AddedToken
        return value.get("content")
    return value if isinstance(value, str) else None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"{path} is not valid JSON: {exc}", hint="re-save the tokenizer with save_pretrained"
        ) from exc
    return data if isinstance(data, dict) else {}


def read_tokenizer_settings(folder: Path) -> TokenizerSettings:
    """Padding and truncation settings of the tokenizer saved in ``folder``."""
    folder = Path(folder)
    config = _read_json(folder / "tokenizer_config.json")
    special = _read_json(folder / "special_tokens_map.json")
    pad = _token_text(config.get("pad_token")) or _token_text(special.get("pad_token"))
    max_len = config.get("model_max_length")
    return TokenizerSettings(
        pad_token=pad,
        padding_side=config.get("padding_side") or "right",
        truncation_side=config.get("truncation_side") or "right",
        split_special_tokens=bool(config.get("split_special_tokens", False)),
        model_max_length=int(max_len) if isinstance(max_len, (int, float)) and max_len < 1_000_000 else None,
    )


def normalizer_lowercases(tokenizer_json: dict[str, Any]) -> bool:
    """True when the tokenizer's normalizer already lowercases."""
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("type") == "Lowercase" or (node.get("type") == "BertNormalizer" and node.get("lowercase")):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False
    return walk(tokenizer_json.get("normalizer"))


@dataclass
class TokenizedTexts:
    """Tokenized texts: int64 arrays by input name, and which texts were truncated."""

    arrays: dict[str, np.ndarray]
    truncated: list[bool] = field(default_factory=list)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def input_ids(self) -> np.ndarray:
        """``[N, L]`` token ids."""
        return self.arrays["input_ids"]

    @property
    def attention_mask(self) -> np.ndarray:
        """``[N, L]``: 1 for tokens, 0 for padding."""
        return self.arrays["attention_mask"]


class TextTokenizer:
    """Tokenizes texts as the model's HF tokenizer does with the spec's padding/truncation.

    Callable on a list of texts; configured once, so concurrent calls are safe.
    """

    def __init__(self, folder: Path | str, spec: TextPreprocessSpec) -> None:
        """
        :param folder: the folder holding ``tokenizer.json`` (the bundle's ``processor/``).
        :param spec: the aligned text spec from the bundle manifest.
        :raises BundleError: when ``tokenizer.json`` is missing or unreadable.
        """
        from tokenizers import Tokenizer

        folder = Path(folder)
        path = folder / TOKENIZER_FILE
        if not path.is_file():
            raise BundleError(
                f"{folder} has no {TOKENIZER_FILE}; mmship tokenizes with the tokenizers library from that file",
                hint="save the tokenizer with transformers 5 (AutoTokenizer.from_pretrained(d).save_pretrained(d)) "
                "and rebuild the bundle",
            )
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust error type is not exported
            raise BundleError(
                f"{path} cannot be loaded: {exc}", hint="re-save the tokenizer with save_pretrained"
            ) from exc
        self.spec = spec
        self.settings = read_tokenizer_settings(folder)
        self.pad_token, self.pad_id = self._pad(spec)
        self.lowercase = spec.lowercase and not normalizer_lowercases(self._normalizer_json(path))
        self._configure()

    def _normalizer_json(self, path: Path) -> dict[str, Any]:
        """``{"normalizer": ...}`` as ``tokenizer.json`` has it, read from the loaded tokenizer
        (its normalizer's pickled state is that JSON: ~0.02 ms, where parsing the whole
        49408-token file again took 60-130 ms per tokenizer); the file where that fails."""
        normalizer = self._tokenizer.normalizer
        try:
            return {"normalizer": json.loads(normalizer.__getstate__()) if normalizer is not None else None}
        except (AttributeError, TypeError, ValueError):
            return json.loads(path.read_text(encoding="utf-8"))

    def _pad(self, spec: TextPreprocessSpec) -> tuple[str, int]:
        token = self.settings.pad_token
        padding = self._tokenizer.padding
        if token is None and padding:
            token = padding.get("pad_token")
        pad_id = self._tokenizer.token_to_id(token) if token is not None else None
        if token is None or pad_id is None:
            raise BundleError(
                f"the tokenizer has no pad token (tokenizer_config.json pad_token: {token!r}), so texts cannot be "
                f"padded to {spec.max_length} tokens",
                hint="set tokenizer.pad_token (e.g. to its eos token) and save it again",
            )
        return token, pad_id

    def _configure(self) -> None:
        tokenizer = self._tokenizer
        if self.spec.truncation:
            tokenizer.enable_truncation(
                self.spec.max_length, stride=0, strategy="longest_first", direction=self.settings.truncation_side
            )
        else:
            tokenizer.no_truncation()
        tokenizer.enable_padding(
            direction=self.settings.padding_side,
            pad_id=self.pad_id,
            pad_type_id=0,
            pad_token=self.pad_token,
            length=self.spec.max_length if self.spec.padding == "max_length" else None,
        )
        tokenizer.encode_special_tokens = self.settings.split_special_tokens

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer knows (added tokens included): ids run from 0 to this - 1."""
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    @property
    def max_length(self) -> int:
        """Tokens per text (special tokens included)."""
        return self.spec.max_length

    def tokenize(self, texts: Sequence[str]) -> TokenizedTexts:
        """Texts -> ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64 ``[N, L]``).

        :raises InputSpecError: for a text that is not a string, or one longer than
            ``max_length`` tokens when the spec does not truncate.
        """
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputSpecError(f"text {i} is a {type(text).__name__}, not a string", hint="send texts as strings")
        if self.lowercase:
            texts = [t.lower() for t in texts]
        width = self.spec.max_length if self.spec.padding == "max_length" else 0
        if not texts:
            empty = np.zeros((0, width), dtype=np.int64)
            return TokenizedTexts({"input_ids": empty, "attention_mask": empty.copy(), "token_type_ids": empty.copy()})
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        truncated = [bool(e.overflowing) for e in encodings]
        lengths = {len(e.ids) for e in encodings}
        if not self.spec.truncation and max(lengths) > self.spec.max_length:
            too_long = [i for i, e in enumerate(encodings) if len(e.ids) > self.spec.max_length]
            raise InputSpecError(
                f"text {too_long[0]} is {len(encodings[too_long[0]].ids)} tokens long, more than this model's "
                f"{self.spec.max_length}" + (f" ({len(too_long)} texts are too long)" if len(too_long) > 1 else ""),
                hint="shorten the text",
            )
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return TokenizedTexts(arrays, truncated)

    __call__ = tokenize


def tokenize(texts: Sequence[str], folder: Path | str, spec: TextPreprocessSpec) -> TokenizedTexts:
    """Tokenize ``texts`` with the tokenizer in ``folder`` as ``spec`` says."""
    return TextTokenizer(folder, spec)(texts)
