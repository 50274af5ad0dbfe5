"""A tiny stub of the mmship HTTP API on 127.0.0.1, for the client, invoke and bench
tests (its fixtures ``stub_server`` and ``stub`` are registered in tests/conftest.py).

The stub decodes and encodes with mmship's own payload codecs and returns fixed-size
deterministic embeddings: no model, no preprocessing. ``StubState.script`` queues
canned answers (e.g. one 503 with Retry-After) served before the normal ones.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from mmship.core.errors import MmshipError
from mmship.core.specs import ScoringSpec
from mmship.payload.images import decode_image_text
from mmship.plugins.codecs.v2 import (
    binary_selection,
    decode_v2_request,
    encode_v2_response,
)
from mmship.scoring import Scorer, unit_rows

MODEL = "stub-clip"
DIM = 8
LOGIT_SCALE = 100.0


@dataclass
class StubState:
    """Mutable behaviour of the stub, shared with the test."""

    script: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    advertise_model: bool = False
    api_key: str | None = None
    delay_s: float = 0.0

    def reset(self) -> None:
        self.script.clear()
        self.seen.clear()
        self.advertise_model = False
        self.api_key = None
        self.delay_s = 0.0


def _vector(seed: bytes) -> np.ndarray:
    digest = hashlib.sha256(seed).digest()
    return (np.frombuffer(digest[:DIM], dtype=np.uint8).astype(np.float32) - 127.5) / 64.0


def embed_images(images: list[bytes]) -> np.ndarray:
    """The stub's image embeddings: a hash of the bytes, ``[N, DIM]``."""
    return np.stack([_vector(b"image:" + b) for b in images]).astype(np.float32)


def embed_texts(texts: list[str]) -> np.ndarray:
    """The stub's text embeddings: a hash of the text, ``[N, DIM]``."""
    return np.stack([_vector(b"text:" + t.encode()) for t in texts]).astype(np.float32)


SCORER = Scorer(ScoringSpec(kind="softmax", logit_scale=LOGIT_SCALE))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_stub_app(state: StubState) -> FastAPI:
    """The stub API: /v2 (metadata, health, infer JSON + binary), /embed, /classify."""
    app = FastAPI()

    @app.middleware("http")
    async def script_and_auth(request: Request, call_next: Any) -> Response:
        state.seen.append((request.method, request.url.path, dict(request.headers)))
        if state.script:
            status, headers, body = state.script.pop(0)
            return JSONResponse(body, status_code=status, headers=headers)
        if state.api_key and request.headers.get("authorization") != f"Bearer {state.api_key}":
            return _error(401, "missing or wrong API key. Fix: send the header 'Authorization: Bearer <key>'")
        if state.delay_s:
            time.sleep(state.delay_s)
        return await call_next(request)

    @app.exception_handler(MmshipError)
    async def user_error(request: Request, exc: MmshipError) -> JSONResponse:
        return _error(400, f"{exc.message}. Fix: {exc.hint}" if exc.hint else exc.message)

    @app.get("/v2")
    async def server() -> dict[str, Any]:
        doc: dict[str, Any] = {"name": "mmship", "version": "stub", "extensions": ["binary_tensor_data"]}
        if state.advertise_model:
            doc["models"] = [MODEL]
        return doc

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2/models/{name}")
    async def metadata(name: str) -> Response:
        if name != MODEL:
            return _error(404, f"no model {name!r} here; this server serves {MODEL!r}. Fix: use /v2/models/{MODEL}")
        return JSONResponse({
            "name": MODEL, "versions": ["1"], "platform": "onnxruntime_onnx",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}, {"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "image_embeds", "datatype": "FP32", "shape": [-1, DIM]},
                        {"name": "text_embeds", "datatype": "FP32", "shape": [-1, DIM]}],
        })

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> Response:
        if name != MODEL:
            return _error(404, f"no model {name!r} here; this server serves {MODEL!r}. Fix: use /v2/models/{MODEL}")
        decoded = decode_v2_request(await request.body(), {k.lower(): v for k, v in request.headers.items()})
        outputs: dict[str, np.ndarray] = {}
        if decoded.inputs.images:
            outputs["image_embeds"] = embed_images(decoded.inputs.images)
        if decoded.inputs.texts:
            outputs["text_embeds"] = embed_texts(decoded.inputs.texts)
        if len(outputs) == 2:
            SCORER.add_logits(outputs)
        if decoded.requested_outputs:
            outputs = {k: outputs[k] for k in decoded.requested_outputs if k in outputs}
        body, headers = encode_v2_response(MODEL, "1", decoded.request_id, outputs, binary_selection(decoded))
        return Response(body, headers=headers, media_type=headers["content-type"])

    @app.post("/embed")
    async def embed(request: Request) -> Response:
        doc = await request.json()
        images = [decode_image_text(v, f"images[{i}]") for i, v in enumerate(doc.get("images", []))]
        texts = doc.get("texts", [])
        if not images and not texts:
            return _error(400, "the request has no inputs. Fix: send at least one image or text")
        out: dict[str, Any] = {"model": MODEL, "dim": DIM, "truncated": [False] * len(texts)}
        for key, array in (("image_embeds", embed_images(images) if images else None), ("text_embeds", embed_texts(texts) if texts else None)):
            if array is not None:
                out[key] = (unit_rows(array) if doc.get("normalize", True) else array).tolist()
        return JSONResponse(out)

    @app.post("/classify")
    async def classify(request: Request) -> Response:
        doc = await request.json()
        image = decode_image_text(doc["image"], "image")
        labels = doc["labels"]
        texts = [doc.get("template", "a photo of a {}").format(label) for label in labels]
        probs = SCORER.probabilities(SCORER.logits(embed_images([image]), embed_texts(texts)))[0]
        return JSONResponse({
            "model": MODEL, "labels": labels, "probs": probs.tolist(), "top": labels[int(np.argmax(probs))], "scoring": "softmax",
        })

    return app


@contextmanager
def serve(app: FastAPI, timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 and a free port, in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stub server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()


@pytest.fixture(scope="module")
def stub_server() -> Iterator[tuple[str, StubState]]:
    """One stub per test module: ``(url, state)``."""
    state = StubState()
    with serve(create_stub_app(state)) as url:
        yield url, state


@pytest.fixture
def stub(stub_server: tuple[str, StubState]) -> Iterator[tuple[str, StubState]]:
    """The session's stub with its state reset around the test."""
    url, state = stub_server
    state.reset()
    yield url, state
    state.reset()


# --- the stub speaks the API ------------------------------------------------------

pytestmark = pytest.mark.network
