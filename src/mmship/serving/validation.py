"""Checks of raw tensors sent by clients against the model's input specs.

Every error names what was expected, what came and the fix; the seed's classic, a
channels-last image, gets its own message.
"""

from __future__ import annotations

import numpy as np

from mmship.core.errors import InputSpecError
from mmship.core.specs import TensorSpec
from mmship.payload.datatypes import v2_datatype


def _shape(values: list[int] | tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def check_tensor(spec: TensorSpec, value: np.ndarray, max_length: int | None = None) -> np.ndarray:
    """Validate ``value`` against ``spec``; returns it cast to the spec's dtype."""
    expected = _shape(spec.shape)
    got = _shape(value.shape)
    if value.ndim != len(spec.shape):
        raise InputSpecError(
            f"Expected input '{spec.name}' to have shape {expected} but got {got}: it has {value.ndim} "
            f"dimensions, the model takes {len(spec.shape)}",
            hint=f"reshape '{spec.name}' to {expected} (-1 is any size; axis 0 is the batch)",
        )
    if value.shape[0] == 0:
        raise InputSpecError(
            f"input '{spec.name}' has an empty batch (shape {got})", hint="send at least one item"
        )
    if spec.layout == "NCHW" and value.ndim == 4:
        channels = spec.shape[1]
        if value.shape[1] != channels and value.shape[3] == channels:
            raise InputSpecError(
                f"Expected input '{spec.name}' to have shape {expected} but got {got}: the image is "
                "channels-last",
                hint="transpose to NCHW (array.transpose(0, 3, 1, 2)) or send the encoded image as 'image'",
            )
    for axis, (want, have) in enumerate(zip(spec.shape, value.shape)):
        if want != -1 and want != have:
            raise InputSpecError(
                f"Expected input '{spec.name}' to have shape {expected} but got {got}: axis {axis} must be {want}",
                hint="send the encoded image as 'image' so the server resizes it"
                if spec.modality == "image"
                else f"resize axis {axis} to {want}",
            )
    if max_length is not None and spec.modality == "text" and value.ndim == 2 and value.shape[1] > max_length:
        raise InputSpecError(
            f"input '{spec.name}' has {value.shape[1]} tokens; the model takes at most {max_length}",
            hint=f"truncate to {max_length} tokens, or send the raw text as 'text' (truncated for you)",
        )
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        bad = int(value.size - np.isfinite(value).sum())
        raise InputSpecError(
            f"input '{spec.name}' holds {bad} NaN or infinite values out of {value.size}",
            hint=f"send finite numbers in '{spec.name}'",
        )
    dtype = np.dtype(spec.dtype)
    if value.dtype != dtype:
        same_kind = np.issubdtype(value.dtype, np.integer) == np.issubdtype(dtype, np.integer)
        if not same_kind:
            raise InputSpecError(
                f"input '{spec.name}' must be {v2_datatype(spec.dtype)}, got {v2_datatype(value.dtype)}",
                hint=f"send '{spec.name}' with datatype {v2_datatype(spec.dtype)}",
            )
        value = value.astype(dtype)
    return value


def check_token_tensors(feeds: dict[str, np.ndarray], specs: dict[str, TensorSpec], vocab_size: int | None) -> None:
    """Check raw text tensors sent by a client before they reach a graph: ``input_ids``
    within the vocabulary (an id past it failed inside the graph; a negative one wrapped
    around silently), ``attention_mask`` of 0s and 1s, and every text input of the same
    shape as ``input_ids``."""
    hint = "tokenize with the model's own tokenizer, or send the raw text as 'text'"
    ids = feeds.get("input_ids")
    if ids is not None and ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < 0:
            raise InputSpecError(f"input 'input_ids' holds the negative token id {low}; token ids start at 0", hint=hint)
        if vocab_size is not None and high >= vocab_size:
            raise InputSpecError(
                f"input 'input_ids' holds token id {high}; this model's vocabulary has ids 0 to {vocab_size - 1}",
                hint=hint,
            )
    for name, value in feeds.items():
        spec = specs.get(name)
        if spec is None or spec.modality != "text" or name == "input_ids":
            continue
        if ids is not None and value.shape != ids.shape:
            raise InputSpecError(
                f"Expected input '{name}' to have the shape of 'input_ids' {_shape(ids.shape)} but got {_shape(value.shape)}",
                hint=f"send one '{name}' value per token of 'input_ids'",
            )
        if name == "attention_mask" and value.size and not np.isin(value, (0, 1)).all():
            bad = value[~np.isin(value, (0, 1))].ravel()[0]
            raise InputSpecError(
                f"input 'attention_mask' holds {bad}; a mask holds only 0 (padding) and 1 (token)", hint=hint,
            )
        if name == "token_type_ids" and value.size and int(value.min()) < 0:
            raise InputSpecError(f"input 'token_type_ids' holds {int(value.min())}; type ids start at 0", hint=hint)
