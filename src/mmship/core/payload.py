"""Payload types: what a client sends and what a server decodes.

Images always travel as encoded bytes (JPEG/PNG/WebP), never as raw pixels without a
shape; codecs (``mmship_encode_payload`` / ``mmship_decode_payload``) turn these into
protocol requests and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PayloadInputs:
    """High-level inputs: encoded images, texts, and raw tensors by input name."""

    images: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tensors: dict[str, Any] = field(default_factory=dict)
    model: str = "default"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EncodedRequest:
    """An HTTP request ready to send: path relative to the base URL, body and headers."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class DecodedRequest:
    """A server-side request after decoding: the same shape as :class:`PayloadInputs`
    plus the names of the outputs the client asked for and their encoding."""

    inputs: PayloadInputs
    requested_outputs: list[str] = field(default_factory=list)
    binary_outputs: bool = False
    request_id: str | None = None
