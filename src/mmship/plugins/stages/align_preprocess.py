"""The ``align`` stage: read a model's HF processor and write down what the server must do.

:func:`align_image` loads the image processor the way transformers does
(``AutoImageProcessor.from_pretrained(folder, backend="pil")``: ``preprocessor_config.json``
or the ``image_processor`` entry of ``processor_config.json``, legacy integer sizes and the
class's own defaults resolved by transformers itself) and turns its settings into an
:class:`~mmship.core.specs.ImagePreprocessSpec`. :func:`align_text` reads the tokenizer files
and the adapter's text length into a :class:`~mmship.core.specs.TextPreprocessSpec`.

The spec is then *measured*, not trusted: :func:`measure_alignment` runs the HF processor and
mmship's runtime (:mod:`mmship.preprocess.pixels` and ``.tokenization``) on the
shipped probe photos, plus grayscale, RGBA, palette and upscaled variants, and on the probe
prompts plus a text longer than ``max_length``. The hook refuses a spec whose pixels fall
under cosine 0.9999 or whose token ids differ, so a processor with custom logic fails the
build instead of drifting in production. Nothing is written.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from mmship import hookimpl
from mmship.core.adapter import Adapter
from mmship.core.errors import BuildError, MmshipError
from mmship.core.specs import ImagePreprocessSpec, PreprocessSpec, TextPreprocessSpec
from mmship.plugins.stages.alignment_check import check_alignment, measure_alignment

log = logging.getLogger(__name__)

IMAGE_CONFIG_FILES = ("preprocessor_config.json", "processor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")
#: Pillow filter numbers (what HF stores as ``resample``) -> spec names.
RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
#: Least cosine accepted between mmship's pixels and the HF processor's.
_SAVE_HINT = "save the processor next to the model: AutoProcessor.from_pretrained(src).save_pretrained(folder)"


# --- images -------------------------------------------------------------------------


def has_image_processor(folder: Path) -> bool:
    """True when ``folder`` holds an image-processor config."""
    return any((Path(folder) / name).is_file() for name in IMAGE_CONFIG_FILES)


def load_hf_image_processor(folder: Path) -> Any:
    """The HF image processor saved in ``folder``, Pillow backend (mmship's reference)."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(str(folder), backend="pil")
    except Exception as exc:  # transformers raises many kinds here
        raise BuildError(
            f"transformers cannot load the image processor in {folder}: {type(exc).__name__}: {exc}",
            hint=_SAVE_HINT,
        ) from exc


def _resample_name(value: Any) -> str:
    if value is None:  # PilBackend.resize's default
        return "bilinear"
    number = int(getattr(value, "value", value))
    if number not in RESAMPLE_NAMES:
        raise BuildError(f"unknown resample filter {value!r} in the image processor", hint="use a Pillow filter (0-5)")
    return RESAMPLE_NAMES[number]


def _three(values: Any, name: str) -> list[float]:
    items = [float(values)] * 3 if isinstance(values, (int, float)) else [float(v) for v in values]
    if len(items) != 3:
        raise BuildError(f"image processor {name} has {len(items)} values, expected 3 (RGB)", hint=f"fix {name}")
    return items


def image_spec_from_processor(processor: Any) -> ImagePreprocessSpec:
    """An image spec from a loaded HF image processor's settings.

    :raises BuildError: for settings mmship's runtime does not implement (longest-edge
        or max-size resizing, padding).
    """
    name = type(processor).__name__
    fields: dict[str, Any] = {"resample": _resample_name(getattr(processor, "resample", None))}
    size = getattr(processor, "size", None)
    if getattr(processor, "do_resize", False) and size is not None:
        shortest, height, width = size.get("shortest_edge"), size.get("height"), size.get("width")
        unsupported = [k for k in ("longest_edge", "max_height", "max_width") if size.get(k)]
        if unsupported:
            raise BuildError(
                f"{name} resizes with {', '.join(unsupported)} ({dict(size)}); mmship's runtime resizes the "
                "shortest edge or to a fixed height and width",
                hint="set size to {'shortest_edge': N} or {'height': H, 'width': W} in preprocessor_config.json",
            )
        if shortest:
            fields["resize_shortest_edge"] = int(shortest)
        elif height and width:
            fields["resize_height"], fields["resize_width"] = int(height), int(width)
        else:
            raise BuildError(f"{name} has do_resize but an unusable size {dict(size)}", hint="fix size")
    crop = getattr(processor, "crop_size", None)
    if getattr(processor, "do_center_crop", False) and crop is not None:
        fields["crop_height"], fields["crop_width"] = int(crop["height"]), int(crop["width"])
    if getattr(processor, "do_pad", False):
        raise BuildError(f"{name} pads images (do_pad); mmship's runtime does not", hint="set do_pad to false")
    do_rescale = getattr(processor, "do_rescale", False)
    fields["rescale_factor"] = float(processor.rescale_factor) if do_rescale else None
    if getattr(processor, "do_normalize", False):
        fields["mean"] = _three(processor.image_mean, "image_mean")
        fields["std"] = _three(processor.image_std, "image_std")
    # Processors that leave do_convert_rgb unset (ViT, FLAVA) fail on grayscale, RGBA or
    # palette images (normalize sees 1 or 4 channels); mmship converts those as CLIP does.
    fields["convert_rgb"] = True
    fields["antialias"] = True  # Pillow's resize always antialiases
    return ImagePreprocessSpec(**fields)


def align_image(folder: Path) -> ImagePreprocessSpec:
    """The image spec of the processor saved in ``folder``."""
    return image_spec_from_processor(load_hf_image_processor(folder))


def check_image_size(adapter: Adapter, spec: ImagePreprocessSpec, folder: Path) -> None:
    """Raise :class:`BuildError` when the processor's output size is not the size the
    adapter's image inputs take."""
    try:
        produced: tuple[int, int] | None = spec.output_size
    except ValueError:
        produced = None
    for tensor in adapter.inputs_for_modality("image"):
        wanted = tuple(tensor.shape[-2:])
        if len(tensor.shape) != 4 or -1 in wanted:
            continue
        if produced is None:
            raise BuildError(
                f"the image processor in {folder} resizes the shortest edge without a crop, so image sizes vary, "
                f"but {tensor.name} takes {wanted[0]}x{wanted[1]}",
                hint=f"set do_center_crop with crop_size {{'height': {wanted[0]}, 'width': {wanted[1]}}}",
            )
        if produced != wanted:
            raise BuildError(
                f"the image processor in {folder} makes {produced[0]}x{produced[1]} images but {tensor.name} "
                f"takes {wanted[0]}x{wanted[1]} ({adapter.name} adapter)",
                hint="make crop_size (or size) in preprocessor_config.json match the vision config's image_size",
            )


# --- texts --------------------------------------------------------------------------


def has_tokenizer(folder: Path) -> bool:
    """True when ``folder`` holds tokenizer files."""
    return any((Path(folder) / name).is_file() for name in TOKENIZER_FILES)


def _fixed_text_length(adapter: Adapter) -> int | None:
    lengths = {s.shape[1] for s in adapter.inputs_for_modality("text") if len(s.shape) > 1 and s.shape[1] > 0}
    if len(lengths) > 1:
        raise BuildError(
            f"adapter {adapter.name!r} declares text inputs of different lengths {sorted(lengths)}",
            hint="give every text input the same sequence length (or -1)",
        )
    return lengths.pop() if lengths else None


def text_max_length(adapter: Adapter, folder: Path) -> int:
    """Tokens per text: the adapter's fixed text-input length when it has one, else the
    smaller of its ``max_text_length`` (what the model can take: position embeddings) and
    the tokenizer's ``model_max_length`` (what the tokenizer truncates to).

    :raises BuildError: when none is known, or the adapter's figures disagree.
    """
    from mmship.preprocess.tokens import read_tokenizer_settings

    try:
        declared = adapter.max_text_length
    except MmshipError:  # a config without the key the adapter reads it from
        declared = None
    fixed = _fixed_text_length(adapter)
    if declared is not None and fixed is not None and int(declared) != fixed:
        raise BuildError(
            f"adapter {adapter.name!r} says max_text_length {declared} but its text inputs are {fixed} long",
            hint="make the text input shape [-1, max_text_length] or [-1, -1]",
        )
    if fixed is not None:
        return fixed
    known = [int(v) for v in (declared, read_tokenizer_settings(folder).model_max_length) if v is not None]
    if known:
        return min(known)
    raise BuildError(
        f"the text length of {folder} is unknown: the adapter has no max_text_length and "
        "tokenizer_config.json no model_max_length",
        hint="set model_max_length in tokenizer_config.json (CLIP: 77)",
    )


def align_text(adapter: Adapter, folder: Path) -> TextPreprocessSpec:
    """The text spec for ``adapter`` from the tokenizer saved in ``folder``.

    Padding is ``max_length`` unless the adapter sets ``text_padding = "longest"`` and its
    text inputs have a dynamic length; truncation is always on; ``pad_ids`` per text input.
    """
    from mmship.preprocess.tokens import (
        TOKENIZER_FILE,
        TextTokenizer,
        normalizer_lowercases,
        tokenizer_pad_value,
    )

    path = Path(folder) / TOKENIZER_FILE
    if not path.is_file():
        raise BuildError(
            f"{folder} has no {TOKENIZER_FILE}; mmship's server tokenizes with the tokenizers library from it",
            hint="write it with transformers 5: AutoTokenizer.from_pretrained(folder).save_pretrained(folder); a "
            "SentencePiece-only tokenizer (spiece.model, e.g. SigLIP's) needs a fast one giving the same ids",
        )
    max_length = text_max_length(adapter, folder)
    padding: Literal["max_length", "longest"] = "max_length"
    if getattr(adapter, "text_padding", None) == "longest" and _fixed_text_length(adapter) is None:
        padding = "longest"
    lowercase = normalizer_lowercases(json.loads(path.read_text(encoding="utf-8")))
    spec = TextPreprocessSpec(max_length=max_length, padding=padding, truncation=True, lowercase=lowercase)
    tokenizer = TextTokenizer(folder, spec)
    spec.pad_ids = {s.name: tokenizer_pad_value(s.name, tokenizer.pad_id) for s in adapter.inputs_for_modality("text")}
    model_vocab = model_text_vocab_size(folder)
    spec.vocab_size = min(tokenizer.vocab_size, model_vocab) if model_vocab else tokenizer.vocab_size
    return spec


def model_text_vocab_size(folder: Path) -> int | None:
    """The text vocabulary of the model saved in ``folder`` (``config.json``'s
    ``text_config.vocab_size``, else its ``vocab_size``), or ``None`` when it says none."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return None
    text_config = config.get("text_config") if isinstance(config, dict) else None
    for source in (text_config, config):
        value = source.get("vocab_size") if isinstance(source, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


# --- measuring ----------------------------------------------------------------------


# --- the hook -----------------------------------------------------------------------


def align(adapter: Adapter, folder: Path) -> PreprocessSpec:
    """The measured preprocessing spec of the model in ``folder`` for ``adapter``."""
    folder = Path(folder)
    image = text = None
    processor = None
    if adapter.inputs_for_modality("image"):
        if not has_image_processor(folder):
            raise BuildError(
                f"model {adapter.name!r} takes images but {folder} has no {' or '.join(IMAGE_CONFIG_FILES)}",
                hint=_SAVE_HINT,
            )
        image = image_spec_from_processor(processor := load_hf_image_processor(folder))
        check_image_size(adapter, image, folder)
    if adapter.inputs_for_modality("text"):
        text = align_text(adapter, folder)
    spec = PreprocessSpec(image=image, text=text)
    report = measure_alignment(spec, folder, processor)
    log.info("preprocessing aligned with %s: %s", folder, report.as_dict())
    check_alignment(report, folder)
    return spec


@hookimpl
def mmship_align_preprocess(adapter: Adapter, source: Path) -> PreprocessSpec | None:
    """Align with the HF processor in ``source``; declines when it holds no processor files."""
    folder = Path(source)
    if not (has_image_processor(folder) or has_tokenizer(folder)):
        return None
    try:
        return align(adapter, folder)
    except MmshipError:
        raise
    except Exception as exc:  # a processor whose settings break mmship's runtime
        raise BuildError(
            f"aligning preprocessing with {folder} failed: {type(exc).__name__}: {exc}", hint=_SAVE_HINT
        ) from exc
