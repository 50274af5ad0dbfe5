"""Mount the registered payload codecs on their routes.

Every codec's route runs the same three steps: the codec decodes the request, the
server runs the codec's operation (``infer``, ``embed`` or ``classify``) on the decoded
request, the codec encodes the answer. Errors the codec or the operation raise are
answered by the app's error handlers (400 with the message and the fix).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response

from mmship.core.codec import Codec
from mmship.core.payload import DecodedRequest

#: Operation name -> the coroutine that answers a decoded request.
Operations = Mapping[str, Callable[[DecodedRequest], Awaitable[Any]]]


def _endpoint(codec: Codec[Any], run: Callable[[DecodedRequest], Awaitable[Any]], check_model: Callable[[str], None]) -> Any:
    async def endpoint(request: Request) -> Response:
        model = request.path_params.get("model")
        if model is not None:
            check_model(model)
        headers = {k.lower(): v for k, v in request.headers.items()}
        decoded = codec.decode_request(await request.body(), headers)
        encoded = codec.encode_response(await run(decoded), decoded)
        return Response(
            encoded.body, status_code=encoded.status, headers=encoded.headers,
            media_type=encoded.headers.get("content-type", "application/json"),
        )

    return endpoint


def mount_codecs(
    app: FastAPI, codecs: Iterable[type[Codec[Any]]], operations: Operations, check_model: Callable[[str], None]
) -> list[str]:
    """Add a POST route for every route of every codec; returns the paths mounted.

    :param operations: the server's answer to each operation a codec may speak.
    :param check_model: raises when a ``{model}`` in the path is not the model served.
    """
    mounted = []
    for cls in codecs:
        run = operations[cls.operation]
        for index, path in enumerate(cls.routes):
            app.add_api_route(
                path, _endpoint(cls(), run, check_model), methods=["POST"], name=f"{cls.name}[{index}]",
                tags=[cls.operation], summary=cls.description or None, include_in_schema=index == 0,
                openapi_extra=dict(cls.openapi) or None,
            )
            mounted.append(path)
    return mounted
