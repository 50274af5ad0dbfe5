"""The bodies of ``POST /v1/embeddings`` and the ways peers put images into it.

One request model (:class:`EmbeddingsRequest`, OpenAI's fields plus the two that peers add:
infinity's ``modality`` and vLLM's ``messages``) and :func:`request_items`, which turns any
of the accepted conventions into the ordered :class:`~mmship.core.payload.EmbedItem` list
of the ``embed_items`` operation:

* OpenAI: ``input`` a string, a list of strings, one token-id array or a list of them;
* infinity: ``input`` image URLs / data URIs with ``"modality": "image"``;
* Jina and SGLang: ``input: [{"text": ...}, {"image": url-or-base64}]``;
* vLLM: ``messages: [{"role": "user", "content": [{"type": "image_url", "image_url":
  {"url": ...}}, {"type": "text", "text": ...}]}]``, one embedding per request.

Images arrive as URLs (fetched by the server only when the operator allows it), data URIs
or bare base64; a malformed one is refused here, naming where it is in the body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmship.core.errors import InputSpecError, RequestFieldError
from mmship.core.payload import EmbedItem
from mmship.payload.images import decode_image_text

#: Schemes a server-side fetch may take (checked again, with the allow-list, by the server).
URL_SCHEMES = ("http://", "https://")


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings`` (OpenAI's embeddings request, with infinity's ``modality`` and
    vLLM's ``messages``)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="a name from GET /v1/models (default: the server's only model)")
    input: Any = Field(
        None,
        description="a string, a list of strings, token ids of the model's tokenizer ([int] or [[int]]), "
        "or [{'text': ...} | {'image': url-or-base64}]",
    )
    messages: list[Any] | None = Field(None, description="vLLM's convention: one chat message with one text or image_url part")
    modality: Literal["text", "image"] | None = Field(None, description="infinity's convention: 'image' makes input image URLs / data URIs")
    encoding_format: Literal["float", "base64"] = Field("float", description="base64: little-endian float32")
    dimensions: int | None = Field(None, gt=0, description="truncate to this size (Matryoshka models only)")
    user: str | None = Field(None, description="accepted and ignored")


class Embedding(BaseModel):
    """One vector of the answer."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32 (encoding_format=base64)")


class Usage(BaseModel):
    """Tokens the texts took (special tokens included; images count none)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """OpenAI's embeddings list."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


def _fail(message: str, field: str, hint: str) -> RequestFieldError:
    return RequestFieldError(message, hint=hint, field=field)


def image_item(value: object, where: str) -> EmbedItem:
    """An image given as a URL (fetched later, if allowed), a data URI or bare base64."""
    if isinstance(value, str) and value.strip().lower().startswith(URL_SCHEMES):
        return EmbedItem("image_url", value.strip())
    try:
        return EmbedItem.image(decode_image_text(value, where))
    except InputSpecError as exc:
        raise RequestFieldError(exc.message, hint=exc.hint, field=where.split("[")[0]) from None


def _is_token_ids(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _object_item(value: dict[str, Any], where: str) -> EmbedItem:
    """Jina / SGLang: ``{"text": ...}`` or ``{"image": ...}``."""
    keys = sorted(k for k in value if value[k] is not None)
    if keys == ["text"]:
        if not isinstance(value["text"], str):
            raise _fail(f"{where}.text is a {type(value['text']).__name__}, not a string", "input", "send the text as a string")
        return EmbedItem.text(value["text"])
    if keys == ["image"]:
        return image_item(value["image"], f"{where}.image")
    if set(keys) == {"text", "image"}:
        raise _fail(
            f"{where} holds both a text and an image; this model embeds texts and images separately, one vector each",
            "input", "send them as two items: [{'text': ...}, {'image': ...}]",
        )
    raise _fail(f"{where} has keys {keys}; an item object takes 'text' or 'image'", "input", "write {'text': ...} or {'image': url-or-base64}")


def _input_items(value: Any, modality: str | None) -> list[EmbedItem]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        shown = "an empty list" if value == [] else f"a {type(value).__name__}"
        raise _fail(f"input is {shown}", "input", "send a string, a list of strings, token ids, or [{'text'|'image': ...}]")
    if modality == "image":
        if not all(isinstance(v, str) for v in value):
            raise _fail("with modality 'image', input must be image URLs or data URIs (strings)", "input", "send strings")
        return [image_item(v, f"input[{i}]") for i, v in enumerate(value)]
    if _is_token_ids(value):
        return [EmbedItem("tokens", list(value))]
    items = []
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            items.append(EmbedItem.text(entry))
        elif _is_token_ids(entry):
            items.append(EmbedItem("tokens", list(entry)))
        elif isinstance(entry, dict):
            items.append(_object_item(entry, f"input[{i}]"))
        else:
            raise _fail(
                f"input[{i}] is {'an empty list' if entry == [] else 'a ' + type(entry).__name__}; expected a string, "
                "a list of token ids or an object",
                "input", "send strings, token-id lists, or {'text'|'image': ...} objects",
            )
    return items


def _message_parts(messages: list[Any]) -> list[tuple[str, Any, str]]:
    parts: list[tuple[str, Any, str]] = []
    for m, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(("text", content, f"messages[{m}].content"))
            continue
        if not isinstance(content, list):
            raise _fail(f"messages[{m}] has no content (a string or a list of parts)", "messages", "write {'role': 'user', 'content': [...]}")
        for p, part in enumerate(content):
            where = f"messages[{m}].content[{p}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append(("text", part.get("text"), where))
            elif kind == "image_url":
                image = part.get("image_url")
                parts.append(("image", image.get("url") if isinstance(image, dict) else image, where + ".image_url.url"))
            else:
                raise _fail(f"{where} has type {kind!r}; this model reads 'text' and 'image_url' parts", "messages", "send a text or an image_url part")
    return parts


def _messages_item(messages: list[Any]) -> EmbedItem:
    """vLLM: the whole conversation is one embedding; a two-tower model embeds one part."""
    parts = _message_parts(messages)
    if len(parts) != 1:
        raise _fail(
            f"messages hold {len(parts)} text/image parts; this model embeds one text or one image per embedding "
            "(it does not fuse a conversation into one vector)",
            "messages", "send one part per request, or several items at once as input: [{'text': ...}, {'image': ...}]",
        )
    kind, value, where = parts[0]
    if kind == "image":
        return image_item(value, where)
    if not isinstance(value, str):
        raise _fail(f"{where}.text is missing or not a string", "messages", "write {'type': 'text', 'text': '...'}")
    return EmbedItem.text(value)


def request_items(request: EmbeddingsRequest) -> list[EmbedItem]:
    """The items of ``request`` in order, whichever convention it uses.

    :raises RequestFieldError: naming the field and the item at fault.
    """
    if request.messages is not None and request.input is not None:
        raise _fail("the request has both input and messages", "messages", "send one of them")
    if request.messages is not None:
        if request.modality == "image":
            raise _fail("modality applies to input, not to messages", "modality", "drop modality; messages say each part's type")
        if not request.messages:
            raise _fail("messages is an empty list", "messages", "send one message with one text or image_url part")
        return [_messages_item(request.messages)]
    if request.input is None:
        raise _fail("the request has no input", "input", "send input (texts, token ids or images) or messages")
    return _input_items(request.input, request.modality)
