"""Mount the registered payload codecs on their routes.

Every codec's route runs the same three steps: the codec decodes the request, the
server runs the codec's operation (``infer``, ``embed`` or ``classify``) on the decoded
request, the codec encodes the answer. Errors the codec or the operation raise are
answered by the app's error handlers (400 with the message and the fix). One deadline
covers all of it (:mod:`mmship.serving.deadlines`); large bodies are decoded in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

from fastapi import FastAPI, Request, Response

from mmship.core.codec import Codec
from mmship.core.payload import DecodedRequest
from mmship.serving.admission_gate import admit_to_model
from mmship.serving.batcher import DeadlineExceededError
from mmship.serving.deadlines import remaining, request_deadline, within
from mmship.serving.http_errors import HTTPProblem
from mmship.serving.middleware import MODEL_SCOPE_KEY

#: Operation name -> the coroutine that answers a decoded request.
Operations = Mapping[str, Callable[[DecodedRequest], Awaitable[Any]]]


#: Bodies up to this size are decoded on the event loop; larger ones in a thread, so a
#: body of a million tiny elements never stalls the health probes.
DECODE_INLINE_BYTES = 64 * 1024

#: The deadline of a server started without one (in-process tests): a year.
_NO_TIMEOUT = 365 * 24 * 3600.0


def _endpoint(
    codec: Codec[Any], run: Callable[[DecodedRequest], Awaitable[Any]], check_model: Callable[[str], Any],
    timeout_s: float | None, decode_pool: Executor | None, model_label: Callable[[str | None], str] | None,
) -> Any:
    async def endpoint(request: Request) -> Response:
        model = request.path_params.get("model")
        if model is not None:
            check_model(model)
            if model_label is not None:
                request.scope[MODEL_SCOPE_KEY] = model_label(model)
        headers = {k.lower(): v for k, v in request.headers.items()}
        limit = timeout_s if timeout_s is not None else _NO_TIMEOUT
        with request_deadline(limit) as deadline:
            try:
                body = await asyncio.wait_for(request.body(), timeout=remaining(deadline, "reading the body"))
            except (asyncio.TimeoutError, DeadlineExceededError):
                raise HTTPProblem(
                    408, f"the request body did not arrive within {limit:g} s. Fix: send the body at once, "
                    "or check the network between the client and the server",
                ) from None
            if len(body) > DECODE_INLINE_BYTES:
                loop = asyncio.get_running_loop()
                decoded = await within(
                    loop.run_in_executor(decode_pool, codec.decode_request, body, headers), deadline, "decoding the body"
                )
            else:
                decoded = codec.decode_request(body, headers)
            if model is not None:  # the path names the model (v2); a body's "model" field otherwise
                decoded.inputs.model = model
            elif model_label is not None:
                request.scope[MODEL_SCOPE_KEY] = model_label(decoded.inputs.model)
            admit_to_model(request.scope, decoded.inputs.model)  # its model's line, when only the body named it
            encoded = codec.encode_response(await run(decoded), decoded)
        return Response(
            encoded.body, status_code=encoded.status, headers=encoded.headers,
            media_type=encoded.headers.get("content-type", "application/json"),
        )

    return endpoint


def mount_codecs(
    app: FastAPI, codecs: Iterable[type[Codec[Any]]], operations: Operations, check_model: Callable[[str], Any],
    *, timeout_s: float | None = None, decode_pool: Executor | None = None,
    model_label: Callable[[str | None], str] | None = None,
) -> list[str]:
    """Add a POST route for every route of every codec; returns the paths mounted.

    :param operations: the server's answer to each operation a codec may speak.
    :param check_model: raises when a ``{model}`` in the path is not a model served; the
        path's name then becomes the decoded request's ``inputs.model``.
    :param timeout_s: each request's deadline, from its arrival to its answer (reading
        and decoding the body, preprocessing, queueing, running); ``None``: no deadline.
    :param decode_pool: where bodies over :data:`DECODE_INLINE_BYTES` are decoded
        (``None``: the event loop's default executor).
    :param model_label: the served name a requested model resolves to (``""``: none),
        left in the request scope for the request metrics' ``model`` label.
    """
    mounted = []
    for cls in codecs:
        run = operations[cls.operation]
        for index, path in enumerate(cls.routes):
            app.add_api_route(
                path, _endpoint(cls(), run, check_model, timeout_s, decode_pool, model_label), methods=["POST"],
                name=f"{cls.name}[{index}]", tags=[cls.operation], summary=cls.description or None,
                include_in_schema=index == 0, openapi_extra=dict(cls.openapi) or None,
            )
            mounted.append(path)
    return mounted
