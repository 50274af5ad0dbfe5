"""Measuring an aligned preprocessing spec against the HF processor it came from.

:func:`measure_alignment` runs the HF processor and mmship's runtime
(:mod:`mmship.preprocess.pixels`, :mod:`mmship.preprocess.tokens`) side by side on the
shipped probe photos plus grayscale, RGBA, palette and upscaled variants, and on probe
prompts plus a text longer than ``max_length``; :func:`check_alignment` refuses pixels under
cosine 0.9999 or any differing token id. Used by the ``align`` stage.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mmship.core.errors import BuildError
from mmship.core.specs import PreprocessSpec

MIN_PIXEL_COSINE = 0.9999


@dataclass
class AlignmentReport:
    """How closely mmship's runtime reproduced the HF processor on probe inputs."""

    pixel_cosine: dict[str, float] = field(default_factory=dict)
    pixel_max_abs_diff: dict[str, float] = field(default_factory=dict)
    token_mismatches: list[str] = field(default_factory=list)

    @property
    def min_pixel_cosine(self) -> float | None:
        """The worst image's cosine (``None`` without images)."""
        return min(self.pixel_cosine.values()) if self.pixel_cosine else None

    @property
    def max_abs_diff(self) -> float | None:
        """The largest pixel difference over all images."""
        return max(self.pixel_max_abs_diff.values()) if self.pixel_max_abs_diff else None

    def as_dict(self) -> dict[str, Any]:
        """Figures for report.json."""
        return {
            "min_pixel_cosine": self.min_pixel_cosine,
            "max_pixel_abs_diff": self.max_abs_diff,
            "images": len(self.pixel_cosine),
            "token_mismatches": self.token_mismatches,
        }


def probe_images() -> dict[str, bytes]:
    """Encoded probe images: the shipped photos (JPEG) and PNG variants that exercise RGB
    conversion and upscaling (grayscale, RGBA with graded alpha, palette, a tiny image)."""
    return dict(_probe_images())


@lru_cache(maxsize=1)
def _probe_images() -> tuple[tuple[str, bytes], ...]:
    from PIL import Image

    folder = resources.files("mmship.data") / "probe"
    photos = {p.name: p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".jpg")}
    base = Image.open(io.BytesIO(next(iter(photos.values())))).convert("RGB")
    rgba = np.array(base.convert("RGBA"))
    rgba[..., 3] = np.linspace(0, 255, rgba.shape[1]).astype(np.uint8)[None, :]
    variants = {
        "gray.png": base.convert("L"),
        "rgba.png": Image.fromarray(rgba),
        "palette.png": base.convert("P", palette=Image.Palette.ADAPTIVE),
        "tiny-wide.png": base.resize((37, 19)),
    }
    for name, image in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        photos[name] = buffer.getvalue()
    return tuple(photos.items())


def probe_texts(max_length: int) -> list[str]:
    """Probe prompts, texts that exercise normalization (case, whitespace, accents, CJK,
    emoji, digits, punctuation), an empty text and one longer than ``max_length`` tokens."""
    meta = json.loads((resources.files("mmship.data") / "probe" / "probe.json").read_text())
    prompts = [meta["template"].format(item["label"]) for item in meta["items"]]
    tricky = ["A PHOTO of a Cat!", "  two   spaces\tand\nnewlines  ", "Café naïve Ünïcödé 東京 😀",
              "It's 3.14 -- isn't it? (42%)"]
    return [*prompts, *tricky, "", " ".join(["A photo of a cat, in space!"] * (max_length // 2 + 4))]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two arrays, in float64 (plain reductions: BLAS threads cost more than
    they save at this size)."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.sum(a64 * b64) / np.sqrt(np.sum(a64 * a64) * np.sum(b64 * b64)))


def measure_alignment(spec: PreprocessSpec, folder: Path, hf_image_processor: Any = None) -> AlignmentReport:
    """Run the HF processor and mmship's runtime side by side on the probe inputs."""
    report = AlignmentReport()
    if spec.image is not None:
        from PIL import Image

        from mmship.plugins.stages.align_preprocess import load_hf_image_processor
        from mmship.preprocess.pixels import ImagePreprocessor

        processor = hf_image_processor or load_hf_image_processor(folder)
        ours = ImagePreprocessor(spec.image, max_pixels=None)
        for name, data in probe_images().items():
            reference = processor(Image.open(io.BytesIO(data)), do_convert_rgb=True, return_tensors="np")
            expected = np.asarray(reference["pixel_values"][0], dtype=np.float32)
            got = ours([data])[0]
            if got.shape != expected.shape:
                report.pixel_cosine[name] = float("nan")
                report.pixel_max_abs_diff[name] = float("inf")
                continue
            report.pixel_cosine[name] = cosine(got, expected)
            report.pixel_max_abs_diff[name] = float(np.abs(got - expected).max())
    if spec.text is not None:
        from transformers import AutoTokenizer

        from mmship.preprocess.tokens import TextTokenizer

        hf_tokenizer = AutoTokenizer.from_pretrained(str(folder))
        texts = probe_texts(spec.text.max_length)
        expected = hf_tokenizer(texts, padding=spec.text.padding, truncation=spec.text.truncation,
                                max_length=spec.text.max_length, return_tensors="np")
        got = TextTokenizer(folder, spec.text)(texts)
        for key in ("input_ids", "attention_mask"):
            if not np.array_equal(np.asarray(expected[key], dtype=np.int64), got[key]):
                rows = [i for i in range(len(texts)) if not np.array_equal(expected[key][i], got[key][i])]
                report.token_mismatches.append(f"{key} differs for texts {rows}")
    return report


def check_alignment(report: AlignmentReport, folder: Path) -> None:
    """Raise :class:`BuildError` when ``report`` shows drift from the HF processor."""
    worst = report.min_pixel_cosine
    if worst is not None and not worst >= MIN_PIXEL_COSINE:
        bad = {k: round(v, 6) for k, v in report.pixel_cosine.items() if not v >= MIN_PIXEL_COSINE}
        raise BuildError(
            f"mmship's image preprocessing drifts from the HF processor in {folder}: cosine {bad} "
            f"(needs >= {MIN_PIXEL_COSINE})",
            hint="the processor has custom logic mmship does not reproduce; write a plugin implementing "
            "mmship_align_preprocess for it",
        )
    if report.token_mismatches:
        raise BuildError(
            f"mmship's tokenization drifts from the HF tokenizer in {folder}: {'; '.join(report.token_mismatches)}",
            hint="re-save it with transformers 5 (AutoTokenizer.from_pretrained(folder).save_pretrained(folder)) "
            "so tokenizer.json holds the pipeline transformers actually runs",
        )
