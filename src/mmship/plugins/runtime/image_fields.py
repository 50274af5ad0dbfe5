"""Images inside JSON: base64 strings or data URIs. URLs are refused (no fetching)."""

from __future__ import annotations

import base64
import binascii

from mmship.core.errors import InputSpecError


def decode_image_field(value: str, where: str) -> bytes:
    """Bytes of an image given as base64 or a ``data:`` URI; ``where`` names the field."""
    text = value.strip()
    if text.startswith(("http://", "https://", "file:", "s3://", "gs://")):
        raise InputSpecError(
            f"{where} is a URL; this server never fetches URLs",
            hint="download the image yourself and send its bytes as base64 or a data URI",
        )
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise InputSpecError(f"{where} is a data URI without ;base64", hint="use data:image/jpeg;base64,...")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputSpecError(
            f"{where} is not valid base64 ({len(value)} characters)",
            hint="base64-encode the file's bytes (JPEG/PNG/WebP), not the raw pixels",
        ) from None
    if not data:
        raise InputSpecError(f"{where} is empty", hint="send the encoded image bytes")
    return data
