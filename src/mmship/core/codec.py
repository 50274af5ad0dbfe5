"""The payload-codec contract: one wire protocol, spoken the same way by both sides.

A codec is a class registered through ``mmship_register_codecs``. It serves one of the
server's operations (:data:`OPERATIONS`) on its POST routes, and it does four things, two
on each side of the wire::

                 request                      response
    client   encode_request(inputs)       decode_response(body) -> answer
    server   decode_request(body)         encode_response(answer, request)

The server mounts every registered codec on its routes and runs the codec's operation
between ``decode_request`` and ``encode_response``; the client picks a codec by protocol
name and uses the other two methods. Two optional parts, for protocols that have them:
a GET route listing the served models (:attr:`Codec.models_route`, :meth:`Codec.encode_models`)
and an error body of their own for every error answered under a path prefix
(:attr:`Codec.error_prefix`, :meth:`Codec.encode_error`). What crosses the codec boundary is typed and the same
for every codec of an operation (:mod:`mmship.core.payload`): :class:`PayloadInputs` /
:class:`DecodedRequest` for requests, the operation's answer (:data:`ANSWERS`) for
responses. A codec only translates bytes; it never runs the model.

A codec refuses a malformed request with :class:`~mmship.core.errors.InputSpecError`
(the server answers 400 with the message and the fix) and a malformed response with
:class:`~mmship.core.errors.MmshipError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

from mmship.core.payload import (
    ClassifyResult,
    DecodedRequest,
    EmbedResult,
    EncodedRequest,
    EncodedResponse,
    InferOutputs,
    ItemEmbeddings,
    ModelCard,
    PayloadInputs,
    RankResult,
)

Operation = Literal["infer", "embed", "classify", "embed_items", "rank"]

#: Operation -> the answer its codecs encode on the server and decode on the client:
#: ``infer`` runs the model's graphs and returns every output (or those asked for);
#: ``embed`` returns embeddings (unit length unless ``normalize`` is false);
#: ``classify`` scores each image against labels put into a template (or the average
#: of several templates' embeddings, a prompt ensemble);
#: ``embed_items`` embeds ``inputs.items`` (texts, token ids, images, image URLs) one
#: unit-length row each, in order, with the token count (``options["dimensions"]``
#: truncates where the model allows it);
#: ``rank`` orders candidate texts for one query image, or candidate images for one
#: query text (``options["query"]``), best first, at most ``options["top_k"]``.
ANSWERS: dict[str, type] = {
    "infer": InferOutputs, "embed": EmbedResult, "classify": ClassifyResult, "embed_items": ItemEmbeddings,
    "rank": RankResult,
}
OPERATIONS: tuple[str, ...] = tuple(ANSWERS)

#: Placeholders a route may hold; the server checks ``{model}`` against the model it serves.
MODEL_PLACEHOLDER = "{model}"

AnswerT = TypeVar("AnswerT", InferOutputs, EmbedResult, ClassifyResult, ItemEmbeddings, RankResult)


class Codec(ABC, Generic[AnswerT]):
    """Base class for payload codecs. Subclasses set the class attributes and implement
    the four methods; the answer type follows from :attr:`operation` (:data:`ANSWERS`)."""

    #: Unique short name (``v2``, ``embed``); also a protocol name unless :attr:`protocols` says otherwise.
    name: ClassVar[str]
    #: One line for ``mmship plugins``.
    description: ClassVar[str] = ""
    #: The server operation this codec speaks (one of :data:`OPERATIONS`).
    operation: ClassVar[Operation]
    #: POST routes the server mounts this codec on, unique across codecs; the first is the
    #: one listed in the OpenAPI document. ``{model}`` and ``{version}`` are placeholders.
    routes: ClassVar[tuple[str, ...]]
    #: Protocol names the client may ask for (default: ``(name,)``), unique across codecs;
    #: several names are variants of one wire format (``v2`` JSON and ``v2-binary``).
    protocols: ClassVar[tuple[str, ...]] = ()
    #: Extra OpenAPI fields for the routes (request body and response schemas).
    openapi: ClassVar[Mapping[str, Any]] = {}
    #: Optional GET route listing the served models in this protocol's format (and
    #: ``<route>/{model}`` for one of them), answered with :meth:`encode_models`.
    models_route: ClassVar[str | None] = None
    #: Optional path prefix this protocol owns: every error answered under it (a bad
    #: request, a wrong key, a body too large, an unknown path) is re-encoded by
    #: :meth:`encode_error`. ``None``: the server's ``{"error": "message. Fix: ..."}``.
    error_prefix: ClassVar[str | None] = None

    @classmethod
    def protocol_names(cls) -> tuple[str, ...]:
        """The protocol names this codec speaks on the client side."""
        return cls.protocols or (cls.name,)

    @classmethod
    def addresses_model(cls) -> bool:
        """True when the request path names the model (the client must know its name)."""
        return any(MODEL_PLACEHOLDER in route for route in cls.routes)

    # --- client side --------------------------------------------------------------

    @abstractmethod
    def encode_request(self, inputs: PayloadInputs, protocol: str) -> EncodedRequest:
        """The HTTP request for ``inputs`` in ``protocol`` (one of :meth:`protocol_names`).

        :raises InputSpecError: when the inputs cannot travel in this protocol.
        """

    @abstractmethod
    def decode_response(self, body: bytes, headers: Mapping[str, str]) -> AnswerT:
        """The answer in a successful response (headers with lower-case names).

        :raises MmshipError: saying what is malformed.
        """

    # --- server side --------------------------------------------------------------

    @abstractmethod
    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> DecodedRequest:
        """The request in ``body`` (headers with lower-case names).

        :raises InputSpecError: naming what was expected, what came and the fix.
        """

    @abstractmethod
    def encode_response(self, answer: AnswerT, request: DecodedRequest) -> EncodedResponse:
        """The HTTP response for ``answer`` to ``request`` (e.g. in the output
        encoding the request asked for)."""

    # --- optional parts (server side) ------------------------------------------------

    def encode_models(self, cards: Sequence[ModelCard], one: bool = False) -> EncodedResponse:
        """The answer of :attr:`models_route`: every served model, or with ``one`` the
        single card of ``<models_route>/{model}``."""
        raise NotImplementedError(f"codec {self.name!r} lists no models")

    def encode_error(self, status: int, message: str, error: BaseException | None) -> EncodedResponse:
        """The error answer under :attr:`error_prefix`.

        :param status: the HTTP status the server answers with.
        :param message: the server's message, with its fix (``... Fix: ...``).
        :param error: the exception answered, when one was raised (its ``field`` and
            ``code`` attributes, as :class:`~mmship.core.errors.RequestFieldError` has them,
            may name the field at fault); ``None`` for answers given before any route ran
            (401, 413, an unknown path).
        """
        raise NotImplementedError(f"codec {self.name!r} has no error format of its own")
