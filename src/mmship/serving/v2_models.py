"""The Open Inference Protocol v2 routes about the served models: server metadata
(``GET /v2``), health, each model's metadata and readiness (``GET /v2/models/{name}``,
``.../ready``, with or without ``/versions/{version}``), and the repository extension's
index (``POST /v2/repository/index``, as KServe and Triton answer it).

Every served model answers under its own name; an unknown name is a 404 listing the
served ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mmship import __version__
from mmship.payload.datatypes import v2_datatype
from mmship.serving.http_errors import HTTPProblem
from mmship.serving.middleware import MODEL_SCOPE_KEY
from mmship.serving.models import ServedModels
from mmship.serving.service import ModelService

#: The one version every served model has.
MODEL_VERSION = "1"


def model_metadata(service: ModelService) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs, outputs (plus the scorer's logits) and parameters."""
    engine = service.engine
    outputs = [{"name": s.name, "datatype": v2_datatype(s.dtype), "shape": s.shape} for s in engine.output_specs.values()]
    scorer = service.scorer
    if scorer.applies(engine.output_specs):
        outputs.append(scorer.output_metadata())
    return {
        "name": service.name, "versions": [MODEL_VERSION], "platform": "onnxruntime_onnx",
        "inputs": service.metadata_inputs(), "outputs": outputs,
        "parameters": {"precision": engine.precision, "adapter": engine.bundle.manifest.adapter, "scoring": scorer.kind},
    }


def path_model(models: ServedModels) -> Callable[[str], ModelService]:
    """A check for a ``{name}`` in a v2 path: the service, or a 404 naming the served models."""

    def check(name: str) -> ModelService:
        if name in models.names():
            return models.resolve(name)
        served = ", ".join(repr(n) for n in models.names())
        first = models.names()[0]
        raise HTTPProblem(404, f"no model {name!r} here; this server serves {served}. Fix: use /v2/models/{first}")

    return check


def _ready_filter(body: bytes) -> bool:
    """The ``ready`` flag of a repository index request (``{}`` or no body: false)."""
    if not body.strip():
        return False
    try:
        doc = json.loads(body)
    except ValueError:
        raise HTTPProblem(400, 'the repository index body is not JSON. Fix: send {} or {"ready": true}') from None
    ready = doc.get("ready", False) if isinstance(doc, dict) else None
    if not isinstance(ready, bool):
        raise HTTPProblem(400, f'the repository index body is {body[:80]!r}. Fix: send {{}} or {{"ready": true}}')
    return ready


def mount_v2_models(app: FastAPI, models: ServedModels, state: dict[str, bool]) -> None:
    """Mount the v2 metadata, health and repository-index routes for ``models``;
    ``state["ready"]`` says whether the models are warmed up and accepting requests."""
    check = path_model(models)

    @app.get("/v2", tags=["v2"])
    async def server_metadata() -> dict:
        return {
            "name": "mmship", "version": __version__, "extensions": ["binary_tensor_data", "model_repository"],
            "models": models.names(),
        }

    @app.get("/v2/health/live", tags=["v2"])
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"])
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    @app.get("/v2/models/{name}", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], include_in_schema=False)
    async def metadata(name: str, request: Request, version: str = MODEL_VERSION) -> dict:
        service = check(name)
        request.scope[MODEL_SCOPE_KEY] = service.name
        return model_metadata(service)

    @app.get("/v2/models/{name}/ready", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], include_in_schema=False)
    async def model_ready(name: str, request: Request, version: str = MODEL_VERSION) -> JSONResponse:
        service = check(name)
        request.scope[MODEL_SCOPE_KEY] = service.name
        return JSONResponse({"name": name, "ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    @app.post("/v2/repository/index", tags=["v2"])
    async def repository_index(request: Request) -> list[dict[str, str]]:
        """Every served model with its version and state (``{"ready": true}``: only the
        ready ones), as the KServe/Triton model repository extension answers."""
        only_ready = _ready_filter(await request.body())
        state_name = "READY" if state["ready"] else "UNAVAILABLE"
        reason = "" if state["ready"] else "warming up or shutting down"
        if only_ready and not state["ready"]:
            return []
        return [{"name": n, "version": MODEL_VERSION, "state": state_name, "reason": reason} for n in models.names()]
