"""Shared parts of the adapters for Hugging Face ``transformers`` models.

:class:`TransformersAdapter` reads nested ``config.json`` keys, declares the usual
``pixel_values`` / ``input_ids`` / ``attention_mask`` inputs, loads checkpoints (safetensors
only, eval mode, float32), finds weights by name in a checkpoint's tensor shapes and builds
example inputs for export (the scoring mixins are in :mod:`mmship.adapters.scoring`).
:func:`dimension_mismatch` builds the error every dimension rule
raises: it names both numbers, where each came from and the config keys to fix.

Importing this module imports neither torch nor transformers: they are imported inside the
methods that need them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mmship.core.adapter import Adapter, LoadOptions
from mmship.core.errors import AdapterError, DimensionMismatchError
from mmship.core.model_source import safetensors_files
from mmship.core.specs import TensorSpec

#: Longest example text used for export (CLIP's context length).
MAX_EXAMPLE_TEXT_LENGTH = 77

_MISSING = object()


@dataclass(frozen=True)
class Dim:
    """One side of a dimension rule: a width, what has it, and what it is.

    :param value: the width, e.g. ``512``.
    :param source: what gives it, e.g. ``visual_projection`` or ``config.json projection_dim``.
    :param what: what the width measures, e.g. ``image embeddings``.
    :param verb: how ``source`` relates to it (``gives``, ``takes``, ``says``).
    """

    value: int
    source: str
    what: str = ""
    verb: str = "gives"

    def __str__(self) -> str:
        return f"{self.source} {self.verb} {self.value}-dim {self.what}".rstrip()


def dimension_mismatch(left: Dim, right: Dim, keys: Sequence[str], fix: str) -> DimensionMismatchError:
    """The error for two widths that must match but do not.

    The message names both numbers and both sources; ``keys`` (the ``config.json`` keys
    involved) are named in the message too, and ``fix`` becomes the hint, e.g.::

        text_projection gives 256-dim text embeddings but visual_projection gives 512-dim
        image embeddings; they must match (config keys: projection_dim)
        Fix: set projection_dim ... / re-export the checkpoint
    """
    return DimensionMismatchError(
        f"{left} but {right}; they must match (config keys: {', '.join(keys)})",
        hint=fix,
    )


@dataclass(frozen=True)
class Projection:
    """A linear projection ``[out, in]`` whose widths come from two config keys.

    :param weight: the weight's name, e.g. ``visual_projection.weight``.
    :param what: what its output is, e.g. ``image embeddings``.
    :param in_key: the config key of its input width, e.g. ``vision_config.hidden_size``.
    :param out_key: the config key of its output width, e.g. ``projection_dim``.
    """

    weight: str
    what: str
    in_key: str
    out_key: str

    @property
    def label(self) -> str:
        """The layer's name (the weight name without ``.weight``)."""
        return self.weight.removesuffix(".weight")


def find_weight(weight_shapes: Mapping[str, list[int]] | None, name: str) -> tuple[str, list[int]] | None:
    """The tensor called ``name`` (or ending in ``.name``, whatever prefix the saving
    version used) and its shape; ``None`` when absent."""
    if not weight_shapes:
        return None
    if name in weight_shapes:
        return name, list(weight_shapes[name])
    matches = sorted(k for k in weight_shapes if k.endswith("." + name))
    if matches:
        key = min(matches, key=len)
        return key, list(weight_shapes[key])
    return None


def load_pretrained(model_class: Any, folder: Path, options: LoadOptions) -> Any:
    """``model_class.from_pretrained`` on a local folder: safetensors only, eval, float32.

    Refuses folders without ``*.safetensors`` (pickle checkpoints can run code on load).
    ``options.extra`` is passed on to ``from_pretrained`` (e.g. ``attn_implementation``).
    """
    safetensors_files(folder)
    import torch

    model = model_class.from_pretrained(
        str(folder),
        use_safetensors=True,
        revision=options.revision,
        trust_remote_code=options.trust_remote_code,
        dtype=torch.float32,
        **options.extra,
    )
    return model.float().eval()


class TransformersAdapter(Adapter):
    """Base class for adapters of ``transformers`` models with image and text inputs.

    Subclasses set the :class:`~mmship.core.adapter.Adapter` class attributes plus
    ``model_class_name`` (a class exported by ``transformers``, or override
    :meth:`model_class`), ``vision_key`` / ``text_key`` (the sub-config sections) and the
    defaults used when a key is missing from ``config.json``.
    """

    #: Class loaded by :meth:`load_model`, looked up in ``transformers``.
    model_class_name: ClassVar[str] = ""
    #: Sub-config section of the image encoder (``vision_config``, ``image_config``).
    vision_key: ClassVar[str] = "vision_config"
    #: Sub-config section of the text encoder.
    text_key: ClassVar[str] = "text_config"
    #: Defaults for keys missing from ``config.json``, by dotted path (the family's
    #: ``transformers`` config defaults).
    config_defaults: ClassVar[Mapping[str, Any]] = {}

    # --- config ----------------------------------------------------------------------

    def config_value(self, path: str, default: Any = _MISSING) -> Any:
        """A nested ``config.json`` value by dotted path (``vision_config.image_size``).

        Missing keys fall back to ``default``, then to :attr:`config_defaults`; with
        neither, an :class:`AdapterError` names the key.
        """
        node: Any = self.hf_config
        for part in path.split("."):
            if not isinstance(node, Mapping) or node.get(part) is None:
                node = _MISSING
                break
            node = node[part]
        if node is not _MISSING:
            return node
        if default is not _MISSING:
            return default
        if path in self.config_defaults:
            return self.config_defaults[path]
        raise AdapterError(
            f"config.json of this {self.hf_config.get('model_type')!r} model has no {path}",
            hint="save the model with save_pretrained so config.json holds every section",
        )

    def config_int(self, path: str) -> int:
        """:meth:`config_value` as an int (image sizes given as ``[h, w]`` give ``h``)."""
        value = self.config_value(path)
        if isinstance(value, (list, tuple)):
            value = value[0]
        try:
            return int(value)
        except (TypeError, ValueError):
            raise AdapterError(
                f"config.json {path} is {value!r}, not a number",
                hint=f"set {path} to a positive integer in config.json",
            ) from None

    @property
    def image_size(self) -> int:
        """Side of the square image the image encoder takes (``<vision_key>.image_size``)."""
        return self.config_int(f"{self.vision_key}.image_size")

    @property
    def max_text_length(self) -> int:
        """The most tokens a text may have (``<text_key>.max_position_embeddings``)."""
        return self.config_int(f"{self.text_key}.max_position_embeddings")

    @property
    def example_text_length(self) -> int:
        """Token length of the example texts used for export."""
        return min(self.max_text_length, MAX_EXAMPLE_TEXT_LENGTH)

    def check_projections(
        self, weight_shapes: Mapping[str, list[int]] | None, projections: Sequence[Projection]
    ) -> None:
        """Check linear projections that must land in one space against the checkpoint.

        Raises :class:`DimensionMismatchError` when two projections give different widths,
        when one's output differs from its ``out_key`` or its input from its ``in_key``.
        Projections missing from ``weight_shapes`` (or no shapes at all) are skipped.
        """
        found = [(p, hit) for p in projections if (hit := find_weight(weight_shapes, p.weight))]
        for (first, (_, first_shape)), (other, (_, other_shape)) in zip(found, found[1:]):
            if first_shape[0] != other_shape[0]:
                raise dimension_mismatch(
                    Dim(other_shape[0], other.label, other.what),
                    Dim(first_shape[0], first.label, first.what),
                    [first.out_key],
                    f"the checkpoint's projections disagree: set {first.out_key} once for both, "
                    "then re-export the checkpoint with save_pretrained",
                )
        for proj, (name, shape) in found:
            expected_out = self.config_int(proj.out_key)
            if shape[0] != expected_out:
                raise dimension_mismatch(
                    Dim(expected_out, f"config.json {proj.out_key}", proj.what, verb="says"),
                    Dim(shape[0], name, proj.what),
                    [proj.out_key],
                    f"set {proj.out_key} to {shape[0]} in config.json (the checkpoint's width), "
                    "or re-export the checkpoint",
                )
            expected_in = self.config_int(proj.in_key)
            if len(shape) > 1 and shape[1] != expected_in:
                raise dimension_mismatch(
                    Dim(expected_in, f"config.json {proj.in_key}", "encoder states", verb="says"),
                    Dim(shape[1], name, "input", verb="takes"),
                    [proj.in_key],
                    f"set {proj.in_key} to {shape[1]} in config.json (the checkpoint's width), "
                    "or re-export the checkpoint",
                )

    # --- specs -----------------------------------------------------------------------

    def image_input_spec(self) -> TensorSpec:
        """``pixel_values``: float32 ``[-1, 3, H, W]`` NCHW."""
        size = self.image_size
        return TensorSpec(
            name="pixel_values",
            dtype="float32",
            shape=[-1, 3, size, size],
            modality="image",
            layout="NCHW",
            description=f"normalised RGB images, {size}x{size}, channels first",
        )

    def text_input_specs(self) -> list[TensorSpec]:
        """``input_ids`` and ``attention_mask``: int64 ``[-1, -1]`` (batch, tokens)."""
        limit = self.max_text_length
        return [
            TensorSpec(
                name="input_ids",
                dtype="int64",
                shape=[-1, -1],
                modality="text",
                description=f"token ids, at most {limit} per text",
            ),
            TensorSpec(
                name="attention_mask",
                dtype="int64",
                shape=[-1, -1],
                modality="text",
                description="1 for real tokens, 0 for padding",
            ),
        ]

    @staticmethod
    def embedding_spec(name: str, dim: int, description: str) -> TensorSpec:
        """A float32 ``[-1, dim]`` embedding output."""
        return TensorSpec(name=name, dtype="float32", shape=[-1, dim], modality="embedding", description=description)

    # --- loading ---------------------------------------------------------------------

    def model_class(self) -> Any:
        """The ``transformers`` class :meth:`load_model` instantiates."""
        import transformers

        return getattr(transformers, self.model_class_name)

    def load_model(self, folder: Path, options: LoadOptions) -> Any:
        """The eager model from a local folder (safetensors only, eval mode, float32)."""
        return load_pretrained(self.model_class(), Path(folder), options)

    # --- example inputs ----------------------------------------------------------------

    def example_pixels(self, batch_size: int, seed: int = 0) -> Any:
        """Random ``pixel_values`` of the model's image size (a seeded float32 tensor)."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        size = self.image_size
        return torch.randn(batch_size, 3, size, size, generator=generator)

    def example_text(
        self,
        batch_size: int,
        *,
        bos: int | None = None,
        eos: int | None = None,
        pad: int = 0,
        seed: int = 0,
    ) -> tuple[Any, Any]:
        """Seeded ``(input_ids, attention_mask)`` of :attr:`example_text_length` tokens.

        Rows have different real lengths (the longest fills the row, the others end in
        padding), start with ``bos`` and end with ``eos`` when given; ordinary tokens
        avoid the special ids.
        """
        import torch

        vocab = self.config_int(f"{self.text_key}.vocab_size")
        length = self.example_text_length
        specials = {i for i in (bos, eos, pad) if i is not None}
        generator = torch.Generator().manual_seed(seed)
        ordinary = torch.tensor([i for i in range(min(vocab, 1024 + len(specials))) if i not in specials])
        picks = torch.randint(0, len(ordinary), (batch_size, length), generator=generator)
        ids = ordinary[picks]
        mask = torch.zeros(batch_size, length, dtype=torch.int64)
        shortest = max(2, length // 2)
        for row in range(batch_size):
            real = length - (row * (length - shortest)) // max(1, batch_size - 1)
            if bos is not None:
                ids[row, 0] = bos
            if eos is not None:
                ids[row, real - 1] = eos
            ids[row, real:] = pad
            mask[row, :real] = 1
        return ids.to(torch.int64), mask
