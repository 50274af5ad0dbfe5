"""Call a FriendliAI Dedicated Endpoint: chat completions (VLMs) or embeddings.

Images travel as data URIs inside OpenAI-style content parts
(``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}``), the
encoded file's bytes with their real MIME type, never raw pixels. ``model`` is the
endpoint id. Used by the target's ``invoke`` (``mmship deployments invoke NAME --target
friendli`` and ``mmship invoke friendli://ID``) and, from Python, by
:func:`invoke_friendli` (which reads ``FRIENDLI_TEAM`` and ``FRIENDLI_BASE_URL`` like the
target does). A call is sent once: a generation is billed, so a timeout or 5xx is
reported, never silently repeated.

FriendliAI documents image parts as URLs (``image_url.url``); that it accepts ``data:``
URIs there is the OpenAI-compatible convention, not something its API reference states.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from mmship.core.errors import DeployError, InputSpecError
from mmship.plugins.targets.friendli.client import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    TEAM_ENV,
    FriendliClient,
    read_token,
)

MODES = ("chat", "embeddings")

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass
class InvokeResult:
    """What an endpoint answered: the reply text (chat) or vectors (embeddings)."""

    mode: str
    endpoint_id: str
    text: str | None = None
    embeddings: list[list[float]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def image_mime(data: bytes) -> str:
    """The MIME type of an encoded image (JPEG, PNG, GIF, WebP); refuses anything else."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise InputSpecError(
        "the image is not an encoded JPEG, PNG, GIF or WebP file (raw pixel bytes cannot be decoded by the server)",
        hint="send the image file's bytes as saved on disk, e.g. --image cat.jpg",
    )


def data_uri(data: bytes) -> str:
    """``data:image/...;base64,...`` for an encoded image."""
    return f"data:{image_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def chat_body(endpoint_id: str, text: str, images: list[bytes], max_tokens: int = 256) -> dict[str, Any]:
    """A chat completions request: one user message with the images then the text."""
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": data_uri(img)}} for img in images]
    parts.append({"type": "text", "text": text})
    content: Any = parts if images else text
    return {"model": endpoint_id, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}


def embeddings_body(endpoint_id: str, texts: list[str]) -> dict[str, Any]:
    """An embeddings request (text only: one string or a list)."""
    return {"model": endpoint_id, "input": texts[0] if len(texts) == 1 else texts}


def invoke_endpoint(
    client: FriendliClient,
    endpoint_id: str,
    *,
    texts: list[str],
    images: list[bytes] | None = None,
    mode: str = "chat",
    max_tokens: int = 256,
) -> InvokeResult:
    """Send one request to an endpoint and decode the answer."""
    images = images or []
    if mode not in MODES:
        raise InputSpecError(f"unknown mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    if mode == "embeddings":
        if images:
            raise InputSpecError(
                "FriendliAI's embeddings API takes text only, not images",
                hint="drop --image, or use --mode chat with a vision-language endpoint",
            )
        if not texts:
            raise InputSpecError("no text to embed", hint='pass --text "..." (repeat for several)')
        answer = client.embeddings(embeddings_body(endpoint_id, texts))
        vectors = [list(item.get("embedding", [])) for item in sorted(answer.get("data", []), key=lambda d: d.get("index", 0))]
        return InvokeResult(mode, endpoint_id, embeddings=vectors, usage=answer.get("usage") or {}, raw=answer)
    if not texts and not images:
        raise InputSpecError("nothing to send", hint='pass --text "..." and optionally --image PATH')
    answer = client.chat_completions(chat_body(endpoint_id, " ".join(texts), images, max_tokens))
    choices = answer.get("choices") or []
    if not choices:
        raise DeployError(f"endpoint {endpoint_id} answered without choices", hint="check the endpoint's status")
    message = choices[0].get("message") or {}
    return InvokeResult(mode, endpoint_id, text=message.get("content"), usage=answer.get("usage") or {}, raw=answer)


def invoke_friendli(
    endpoint_id: str,
    *,
    texts: list[str],
    images: list[bytes] | None = None,
    mode: str = "chat",
    base_url: str | None = None,
    team: str | None = None,
    timeout_s: float = 60.0,
    max_tokens: int = 256,
) -> InvokeResult:
    """One call to endpoint ``endpoint_id`` (an id, used as is) with the token from
    ``FRIENDLI_TOKEN``, for Python callers; ``team`` defaults to ``$FRIENDLI_TEAM`` and ``base_url`` to ``$FRIENDLI_BASE_URL``, else
    FriendliAI's API."""
    team = team if team is not None else (os.environ.get(TEAM_ENV) or None)
    base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    with FriendliClient(read_token(), base_url, team=team, timeout_s=timeout_s) as client:
        return invoke_endpoint(client, endpoint_id, texts=texts, images=images, mode=mode, max_tokens=max_tokens)
