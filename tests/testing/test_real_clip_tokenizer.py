"""The true 49408-token CLIP tokenizer built offline from the open-clip-torch wheel.

The reference is open_clip's own ``SimpleTokenizer`` (OpenAI's algorithm), run from the
source file in the same wheel (importing the ``open_clip`` package would need torchvision).
Known, deliberate differences are those between any Hugging Face CLIP tokenizer and
OpenAI's: ftfy repairs (curly quotes, ligatures, full-width letters), HTML entities and
Greek final sigma; captions here avoid them.
"""

from __future__ import annotations

import gzip
import types
import zipfile
from pathlib import Path

import pytest

from mmship.testing.tokenizers import (
    CLIP_BPE_ENV,
    CLIP_BPE_MEMBER,
    ClipVocabularyError,
    clip_bpe_candidates,
    make_real_clip_tokenizer,
    read_clip_bpe,
)

CAPTIONS = [
    "a photo of a cat sitting on a table",
    "A PHOTO of a Dog, running... on the beach!?",
    "it's the dog's toy; they'll play, won't they?",
    "café crème brûlée à la carte",
    "Straße in München",
    "猫が座っている",
    "a 🐱 and a 🐶 next to a 🚀",
    "  multiple   spaces\tand\nnewlines ",
    "price: $12.50 (50% off) #deal @shop 2024-01-31",
    "antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis",
]
LONG_CAPTION = " ".join(
    ["a detailed photograph of an astronaut, in a white suit, holding a cup of coffee"] * 8
)


def _open_clip_wheel() -> Path:
    wheels = [path for path in clip_bpe_candidates() if path.suffix == ".whl"]
    assert wheels, "no open-clip-torch wheel: run `make install-dev`"
    return wheels[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """open_clip's SimpleTokenizer, loaded from ``open_clip/tokenizer.py`` in the wheel."""
    wheel = _open_clip_wheel()
    folder = tmp_path_factory.mktemp("open_clip")
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("open_clip/tokenizer.py").decode()
        # the module builds a default tokenizer from the file beside it when executed
        (folder / Path(CLIP_BPE_MEMBER).name).write_bytes(archive.read(CLIP_BPE_MEMBER))
    module = types.ModuleType("open_clip_reference_tokenizer")
    module.__file__ = str(folder / "tokenizer.py")
    exec(compile(source, "open_clip/tokenizer.py", "exec"), module.__dict__)
    return module.SimpleTokenizer(bpe_path=str(folder / Path(CLIP_BPE_MEMBER).name))


@pytest.fixture(scope="module")
def tokenizer():
    return make_real_clip_tokenizer()


def test_has_the_real_vocabulary_and_special_ids(tokenizer, reference):
    assert len(tokenizer) == 49408 == reference.vocab_size
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (49406, 49407, 49407)
    assert tokenizer.model_max_length == 77
    assert tokenizer.convert_ids_to_tokens([320, 1125, 539, 2368]) == ["a</w>", "photo</w>", "of</w>", "cat</w>"]


@pytest.mark.parametrize("caption", CAPTIONS + [LONG_CAPTION])
def test_ids_match_open_clip(tokenizer, reference, caption):
    expected = [reference.sot_token_id, *reference.encode(caption), reference.eot_token_id]
    assert tokenizer(caption)["input_ids"] == expected


def test_a_real_caption_has_its_real_length(tokenizer):
    ids = tokenizer("a photo of a cat sitting on a table")["input_ids"]
    assert len(ids) == 11  # 9 words + bos + eos (the stand-in tokenizer gives 33)


def test_long_captions_truncate_to_77_like_open_clip(tokenizer, reference):
    assert len(reference.encode(LONG_CAPTION)) > 77
    batch = tokenizer([LONG_CAPTION, CAPTIONS[0]], padding="max_length", truncation=True, max_length=77, return_tensors="np")
    expected = reference([LONG_CAPTION, CAPTIONS[0]]).numpy()  # pads with 0
    assert batch["input_ids"].shape == expected.shape == (2, 77)
    mask = batch["attention_mask"].astype(bool)
    assert (batch["input_ids"][mask] == expected[mask]).all()
    assert mask[0].all() and mask[1].sum() == 11


def test_saved_tokenizer_loads_back_with_the_same_ids(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for caption in CAPTIONS:
        assert loaded(caption)["input_ids"] == tokenizer(caption)["input_ids"]


def test_reads_the_vocabulary_from_a_gz_named_by_the_environment(tmp_path, monkeypatch):
    with zipfile.ZipFile(_open_clip_wheel()) as archive:
        (tmp_path / "bpe.txt.gz").write_bytes(archive.read(CLIP_BPE_MEMBER))
    monkeypatch.setenv(CLIP_BPE_ENV, str(tmp_path / "bpe.txt.gz"))
    assert clip_bpe_candidates()[0] == tmp_path / "bpe.txt.gz"
    assert gzip.decompress(read_clip_bpe()).startswith(b'"bpe_simple_vocab_16e6.txt#version: 0.2\n')


def test_missing_vocabulary_says_how_to_get_it(tmp_path):
    with pytest.raises(ClipVocabularyError) as error:
        read_clip_bpe(tmp_path / "absent.txt.gz")
    assert "absent.txt.gz" in error.value.message
    assert "make install-dev" in error.value.hint


def test_a_tampered_vocabulary_is_refused(tmp_path):
    with zipfile.ZipFile(_open_clip_wheel()) as archive:
        data = gzip.decompress(archive.read(CLIP_BPE_MEMBER))
    tampered = tmp_path / "bpe.txt.gz"
    tampered.write_bytes(gzip.compress(data.replace(b"\nc at</w>\n", b"\nx at</w>\n", 1)))
    assert data.count(b"\nc at</w>\n") == 1
    with pytest.raises(ClipVocabularyError, match="sha256"):
        read_clip_bpe(tampered)


def test_a_zip_without_the_vocabulary_is_refused(tmp_path):
    wheel = tmp_path / "open_clip_torch-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("open_clip/__init__.py", "")
    with pytest.raises(ClipVocabularyError, match=CLIP_BPE_MEMBER):
        read_clip_bpe(wheel)


def test_random_clip_with_the_real_tokenizer(tmp_path):
    import torch
    from transformers import AutoTokenizer, CLIPModel

    from mmship.testing.models import make_random_clip

    tiny = {
        "projection_dim": 16,
        "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": 32, "patch_size": 16},
    }
    folder = make_random_clip(tmp_path / "clip", real_tokenizer=True, **tiny)
    model = CLIPModel.from_pretrained(folder).eval()
    tokens = AutoTokenizer.from_pretrained(folder)(["a photo of a cat", CAPTIONS[5]], padding=True, return_tensors="pt")
    text = model.config.text_config
    assert model.text_model.embeddings.token_embedding.num_embeddings == 49408
    assert (text.bos_token_id, text.eos_token_id, text.pad_token_id) == (49406, 49407, 49407)
    assert tokens["input_ids"].max().item() == 49407
    with torch.no_grad():
        assert model.get_text_features(**tokens).pooler_output.shape == (2, 16)
