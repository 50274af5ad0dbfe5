"""The Python client of an mmship server.

::

    from mmship.client import Client

    with Client("http://127.0.0.1:8000", api_key=None) as client:
        result = client.embed(images=["cat.jpg"], texts=["a photo of a cat"])
        print(result.image_embeds @ result.text_embeds.T)
        print(client.classify("cat.jpg", ["cat", "dog"]).top)
        print(client.rank(image="cat.jpg", texts=["a cat", "a dog"], top_k=1).results[0].text)
        outputs = client.infer(images=["cat.jpg"], texts=["a cat"], protocol="v2-binary")

Images are always sent as encoded files (JPEG/PNG/WebP bytes), never raw pixels: paths
and encoded bytes go as they are, PIL images and numpy arrays are encoded to PNG.
Requests are encoded and answers decoded by the payload codec of the protocol asked for
(the codecs registered through ``mmship_register_codecs``, the same ones the server
mounts; :meth:`Client.call` speaks any of them). Answers 503 and
429 are retried after the server's ``Retry-After`` (capped), connection errors with a
short backoff, both at most ``retries`` times; any other error answer raises
:class:`ServerError` with the server's message.
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from mmship import __version__
from mmship.core.codec import Codec
from mmship.core.errors import MmshipError
from mmship.core.payload import (
    DEFAULT_TEMPLATE,
    OPTION_IMAGE_LIST,
    OPTION_LABELS,
    OPTION_NORMALIZE,
    OPTION_OUTPUTS,
    OPTION_QUERY,
    OPTION_TEMPLATE,
    OPTION_TEMPLATES,
    OPTION_TOP_K,
    ClassifyResult,
    EmbedResult,
    EncodedRequest,
    ImageScores,
    InferOutputs,
    PayloadInputs,
    RankedCandidate,
    RankResult,
)
from mmship.payload.images import ImageLike, to_image_bytes

__all__ = ["Client", "ClassifyResult", "EmbedResult", "Health", "ImageScores", "InferOutputs", "RankResult", "RankedCandidate",
           "ServerError", "PROTOCOLS"]

#: Protocols of mmship's own codecs (plugins may add more: ``Client.protocols()``).
PROTOCOLS = ("v2", "v2-binary", "embed", "classify", "openai", "rank")
RETRY_STATUSES = frozenset({429, 503})
_RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class ServerError(MmshipError):
    """The server answered with an error; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class Health:
    """``/v2/health/live`` and ``/v2/health/ready``."""

    live: bool
    ready: bool


def error_from_response(response: httpx.Response) -> ServerError:
    """A :class:`ServerError` with the server's ``{"error": ...}`` message (its
    ``Fix:`` part becomes the hint)."""
    text = ""
    try:
        doc = response.json()
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict):  # OpenAI's error object
            error = error.get("message")
        text = str(error or doc.get("detail") or "") if isinstance(doc, dict) else ""
    except ValueError:
        pass
    text = text or response.text.strip()[:500] or response.reason_phrase
    message, _, hint = text.partition(" Fix: ")
    return ServerError(
        response.status_code,
        f"the server answered {response.status_code}: {message.rstrip('. ') if hint else message}",
        hint=hint or None,
    )


def retry_after_seconds(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), capped;
    ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


def _as_list(items: Any, single: tuple[type, ...]) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, single) or isinstance(items, np.ndarray) or type(items).__module__.startswith("PIL."):
        return [items]
    return list(items)


def encode_images(images: Sequence[ImageLike] | ImageLike | None) -> list[bytes]:
    """Encoded bytes of each image (paths, bytes, PIL images, numpy arrays)."""
    return [to_image_bytes(image, f"image {i}") for i, image in enumerate(_as_list(images, (str, bytes, bytearray, os.PathLike)))]


class Client:
    """A synchronous client of one mmship server.

    :param url: the server's base URL, e.g. ``http://127.0.0.1:8000``.
    :param api_key: sent as ``Authorization: Bearer <key>``.
    :param timeout: seconds per HTTP request.
    :param retries: how many times to retry a 503/429 answer or a connection error.
    :param model: the model every call addresses: the v2 path, ``model`` in other bodies
        (default: the server's first, for v2 asked from ``GET /v2``).
    :param max_retry_wait: the longest ``Retry-After`` honoured, in seconds.
    :param transport: an httpx transport (tests).
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        model: str | None = None,
        max_retry_wait: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise MmshipError(f"{url!r} is not an http(s) URL", hint="write e.g. http://127.0.0.1:8000")
        self.url = url.rstrip("/")
        self.retries = max(0, int(retries))
        self.max_retry_wait = max_retry_wait
        self._model = model
        self.headers = {"user-agent": f"mmship/{__version__}"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=self.headers, transport=transport)

    # --- plumbing -----------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        return min(0.1 * 2**attempt, 2.0, self.max_retry_wait)

    def request(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        check: bool = True,
    ) -> httpx.Response:
        """Send one request with the retry policy; raises :class:`ServerError` for an
        error answer when ``check``."""
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, headers=dict(headers or {}))
            except _RETRY_ERRORS as exc:
                if attempt >= self.retries:
                    raise MmshipError(
                        f"cannot reach {self.url}{path}: {type(exc).__name__}: {exc}",
                        hint="check the URL and that the server runs (mmship serve BUNDLE)",
                    ) from None
                time.sleep(self._backoff(attempt))
                attempt += 1
                continue
            except httpx.TimeoutException as exc:
                raise MmshipError(
                    f"{method} {self.url}{path} timed out ({type(exc).__name__})",
                    hint="raise the client timeout, or send fewer items per request",
                ) from None
            if response.status_code in retry_statuses and attempt < self.retries:
                wait = retry_after_seconds(response.headers.get("retry-after"), self.max_retry_wait)
                time.sleep(self._backoff(attempt) if wait is None else wait)
                attempt += 1
                continue
            if check and response.status_code >= 400:
                raise error_from_response(response)
            return response

    def send(self, encoded: EncodedRequest) -> httpx.Response:
        """Send an encoded request (from a codec)."""
        return self.request(encoded.method, encoded.path, encoded.body, encoded.headers)

    def protocols(self) -> list[str]:
        """Every protocol the registered codecs speak."""
        from mmship.core.manager import get_plugin_manager

        return get_plugin_manager().codecs().protocols()

    def codec(self, protocol: str) -> Codec[Any]:
        """The codec speaking ``protocol`` (``v2``, ``v2-binary``, ``embed``, ``classify``,
        or one a plugin registered)."""
        from mmship.core.manager import get_plugin_manager

        return get_plugin_manager().codecs().for_protocol(protocol)()

    def encode(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """Encode ``inputs`` for ``protocol`` with its codec."""
        return self.codec(protocol).encode_request(inputs, protocol)

    def call(self, inputs: PayloadInputs, protocol: str) -> InferOutputs | EmbedResult | ClassifyResult:
        """Send ``inputs`` in ``protocol`` and decode the answer with the same codec: the
        answer of the codec's operation (:class:`InferOutputs`, :class:`EmbedResult` or
        :class:`ClassifyResult`). When the codec's routes name the model, ``inputs.model``
        defaults to :meth:`model_name`, otherwise to the client's ``model`` if given."""
        codec = self.codec(protocol)
        if inputs.model == PayloadInputs().model and (codec.addresses_model() or self._model):
            inputs = dataclasses.replace(inputs, model=self.model_name())
        response = self.send(codec.encode_request(inputs, protocol))
        return codec.decode_response(response.content, response.headers)

    # --- metadata -----------------------------------------------------------------

    def health(self) -> Health:
        """Whether the server is live and ready (a 503 is an answer, not retried)."""
        live = self.request("GET", "/v2/health/live", retry_statuses=frozenset(), check=False)
        ready = self.request("GET", "/v2/health/ready", retry_statuses=frozenset(), check=False)
        return Health(live=live.status_code == 200, ready=ready.status_code == 200)

    def server_metadata(self) -> dict[str, Any]:
        """``GET /v2``: name, version, extensions."""
        return self.request("GET", "/v2").json()

    @property
    def model(self) -> str | None:
        """The model name given or learned so far (``None`` until known)."""
        return self._model

    def model_name(self) -> str:
        """The model to address: the one given, else the (first) one ``GET /v2`` names."""
        if self._model:
            return self._model
        doc = self.server_metadata()
        models = doc.get("models") if isinstance(doc, dict) else None
        name = doc.get("model") if isinstance(doc, dict) else None
        if isinstance(models, list) and models:
            name = models[0].get("name") if isinstance(models[0], dict) else models[0]
        if not isinstance(name, str) or not name:
            raise MmshipError(
                f"{self.url} does not say which model it serves",
                hint="pass the model name (Client(model=...), mmship invoke --model NAME), or use the embed protocol",
            )
        self._model = name
        return name

    def metadata(self, model: str | None = None) -> dict[str, Any]:
        """``GET /v2/models/{model}``: inputs, outputs, platform."""
        from urllib.parse import quote

        return self.request("GET", f"/v2/models/{quote(model or self.model_name(), safe='')}").json()

    # --- inference ----------------------------------------------------------------

    def embed(
        self,
        images: Sequence[ImageLike] | ImageLike | None = None,
        texts: Sequence[str] | str | None = None,
        normalize: bool = True,
    ) -> EmbedResult:
        """Embed images and texts through ``POST /embed``."""
        inputs = PayloadInputs(images=encode_images(images), texts=_as_list(texts, (str,)), options={OPTION_NORMALIZE: normalize})
        return self._answer(inputs, "embed", EmbedResult)

    def classify(
        self, image: ImageLike, labels: Sequence[str] | str, template: str = DEFAULT_TEMPLATE,
        *, templates: Sequence[str] | None = None,
    ) -> ClassifyResult:
        """Zero-shot classification of one image through ``POST /classify``.
        ``labels`` may be a list or one comma-separated string; ``templates`` (a prompt
        ensemble: each label's prompts averaged) replaces ``template``."""
        return self._classify(encode_images([image]), labels, template, templates, image_list=False)

    def classify_many(
        self, images: Sequence[ImageLike], labels: Sequence[str] | str, template: str = DEFAULT_TEMPLATE,
        *, templates: Sequence[str] | None = None,
    ) -> ClassifyResult:
        """Zero-shot classification of several images against the same labels in one
        request; ``result.results[i]`` holds image ``i``'s probabilities and top label."""
        return self._classify(encode_images(list(images)), labels, template, templates, image_list=True)

    def _classify(
        self, images: list[bytes], labels: Sequence[str] | str, template: str, templates: Sequence[str] | None,
        image_list: bool,
    ) -> ClassifyResult:
        if isinstance(labels, str):
            labels = [part.strip() for part in labels.split(",") if part.strip()]
        ensemble = list(templates) if templates is not None else None
        options = {OPTION_LABELS: list(labels), OPTION_IMAGE_LIST: image_list, OPTION_TEMPLATES: ensemble,
                   OPTION_TEMPLATE: template if ensemble is None else None}
        return self._answer(PayloadInputs(images=images, options=options), "classify", ClassifyResult)

    def rank(
        self,
        *,
        image: ImageLike | None = None,
        text: str | None = None,
        texts: Sequence[str] | None = None,
        images: Sequence[ImageLike] | None = None,
        top_k: int | None = None,
    ) -> RankResult:
        """Rank candidate ``texts`` for a query ``image``, or candidate ``images`` for a
        query ``text``, through ``POST /rank``: the best ``top_k`` (default: all), best
        first, each with its cosine and its probability under the model's scoring."""
        query = "image" if image is not None else "text"  # the codec refuses any other mix, naming what came
        inputs = PayloadInputs(
            images=encode_images([image, *(images or [])] if image is not None else images),
            texts=[*([text] if text is not None else []), *_as_list(texts, (str,))],
            options={OPTION_QUERY: query, OPTION_TOP_K: top_k},
        )
        return self._answer(inputs, "rank", RankResult)

    def infer(
        self,
        images: Sequence[ImageLike] | ImageLike | None = None,
        texts: Sequence[str] | str | None = None,
        protocol: str = "v2",
        *,
        tensors: Mapping[str, np.ndarray] | None = None,
        outputs: Sequence[str] | None = None,
        model: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model; returns its outputs by name (``image_embeds``, ``text_embeds``,
        and ``logits_per_image`` when both modalities are sent over v2).

        :param protocol: ``v2`` (JSON), ``v2-binary`` (binary tensor data), ``embed``, or
            any protocol of a codec whose operation is ``infer`` or ``embed``.
        :param tensors: raw input tensors by name (v2 protocols only).
        :param outputs: output names to ask for (v2 protocols; default: all).
        """
        inputs = PayloadInputs(images=encode_images(images), texts=_as_list(texts, (str,)), tensors=dict(tensors or {}))
        if model:
            inputs.model = model
        if outputs:
            inputs.options[OPTION_OUTPUTS] = list(outputs)
        answer = self.call(inputs, protocol)
        if isinstance(answer, EmbedResult):
            return answer.arrays()
        if isinstance(answer, InferOutputs):
            return answer.outputs
        raise MmshipError(
            f"protocol {protocol!r} answers {type(answer).__name__}, not model outputs",
            hint="use client.classify for classification, or an infer/embed protocol",
        )

    def _answer(self, inputs: PayloadInputs, protocol: str, kind: type[Any]) -> Any:
        answer = self.call(inputs, protocol)
        if not isinstance(answer, kind):
            raise MmshipError(
                f"the codec of protocol {protocol!r} answered {type(answer).__name__}, not {kind.__name__}",
                hint="check the plugin that registers this protocol (`mmship plugins`)",
            )
        return answer
