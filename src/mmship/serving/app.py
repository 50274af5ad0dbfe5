"""The FastAPI application: Open Inference Protocol v2, /embed, /classify, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from mmship import __version__
from mmship.core.errors import InputSpecError
from mmship.core.payload import PayloadInputs
from mmship.payload.datatypes import v2_datatype
from mmship.payload.images import decode_image_text
from mmship.scoring import unit_rows
from mmship.serving.engine import Engine
from mmship.serving.http_errors import HTTPProblem, install_error_handlers
from mmship.serving.metrics import ServerMetrics
from mmship.serving.middleware import GuardMiddleware
from mmship.serving.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    EmbedRequest,
    EmbedResponse,
)
from mmship.serving.service import ModelService
from mmship.serving.settings import ServerSettings

V2_INFER_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object", "description": "Open Inference Protocol v2 request"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description": "binary-data extension"}},
        }
    }
}


def create_app(engine: Engine, settings: ServerSettings) -> FastAPI:
    """An app serving one bundle's model."""
    metrics = ServerMetrics()
    service = ModelService(engine, settings, metrics)
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        state["ready"] = True
        sampler = _memory_sampler(settings) if settings.memory_log else None
        try:
            yield
        finally:
            state["ready"] = False
            if sampler is not None:
                sampler.cancel()
            await service.stop()

    app = FastAPI(
        title=f"mmship: {service.name}",
        version=__version__,
        description="Open Inference Protocol v2 plus /embed and /classify for one multimodal model.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(
        GuardMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
    )

    def model_or_404(name: str) -> None:
        if name != service.name:
            raise HTTPProblem(404, f"no model {name!r} here; this server serves {service.name!r}. Fix: use /v2/models/{service.name}")

    def check_items(count: int) -> None:
        if count > settings.max_items_per_request:
            raise InputSpecError(
                f"the request has {count} items; this server takes at most {settings.max_items_per_request} per request",
                hint="split the request",
            )

    # --- health and metadata ----------------------------------------------------------

    @app.get("/v2", tags=["v2"])
    async def server_metadata() -> dict:
        return {"name": "mmship", "version": __version__, "extensions": ["binary_tensor_data"], "models": [service.name]}

    @app.get("/v2/health/live", tags=["v2"])
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"])
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    @app.get("/v2/models/{name}", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], include_in_schema=False)
    async def model_metadata(name: str, version: str = "1") -> dict:
        model_or_404(name)
        outputs = [{"name": s.name, "datatype": v2_datatype(s.dtype), "shape": s.shape} for s in engine.output_specs.values()]
        scorer = service.scorer
        if scorer.applies(engine.output_specs):
            outputs.append(scorer.output_metadata())
        return {
            "name": service.name, "versions": ["1"], "platform": "onnxruntime_onnx",
            "inputs": service.metadata_inputs(), "outputs": outputs,
            "parameters": {"precision": engine.precision, "adapter": engine.bundle.manifest.adapter, "scoring": scorer.kind},
        }

    @app.get("/v2/models/{name}/ready", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], include_in_schema=False)
    async def model_ready(name: str, version: str = "1") -> JSONResponse:
        model_or_404(name)
        return JSONResponse({"name": name, "ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    # --- inference ----------------------------------------------------------------------

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=V2_INFER_BODY)
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], include_in_schema=False)
    async def infer(name: str, request: Request, version: str = "1") -> Response:
        model_or_404(name)
        from mmship.core.manager import get_plugin_manager
        from mmship.plugins.codecs.v2 import binary_selection, encode_v2_response

        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        decoded = get_plugin_manager().hook.mmship_decode_payload(body=body, headers=headers, protocol="v2")
        if decoded is None:
            raise HTTPProblem(415, "no payload plugin decodes Open Inference Protocol v2 requests. Fix: check `mmship plugins`")
        check_items(len(decoded.inputs.images) + len(decoded.inputs.texts))
        result = await service.infer(decoded.inputs, decoded.requested_outputs)
        outputs = result.outputs
        if decoded.requested_outputs:
            missing = [n for n in decoded.requested_outputs if n not in outputs]
            if missing:
                raise InputSpecError(
                    f"requested outputs {missing} are not produced for these inputs (available: {sorted(outputs)})",
                    hint="ask for available outputs, or send the inputs that produce them",
                )
            outputs = {n: outputs[n] for n in decoded.requested_outputs}
        payload, extra_headers = encode_v2_response(
            service.name, "1", decoded.request_id, outputs, binary_selection(decoded),
            parameters={"truncated": result.truncated} if any(result.truncated) else None,
        )
        return Response(payload, headers=extra_headers, media_type=extra_headers.get("content-type", "application/json"))

    @app.post("/embed", tags=["people"], response_model=EmbedResponse)
    async def embed(body: EmbedRequest) -> EmbedResponse:
        """Embed images (base64 or data URI) and texts; normalised to unit length by default."""
        check_items(len(body.images) + len(body.texts))
        images = [decode_image_text(v, f"images[{i}]") for i, v in enumerate(body.images)]
        result = await service.infer(PayloadInputs(images=images, texts=body.texts))
        outputs = {k: v for k, v in result.outputs.items() if k != service.scorer.spec.output}
        if body.normalize:
            outputs = {k: unit_rows(v) for k, v in outputs.items()}
        listed = {k: v.astype(float).tolist() for k, v in outputs.items()}
        dim = int(next(iter(outputs.values())).shape[1])
        return EmbedResponse(
            model=service.name, dim=dim, image_embeds=listed.pop("image_embeds", None),
            text_embeds=listed.pop("text_embeds", None), embeds=listed, truncated=result.truncated,
        )

    @app.post("/classify", tags=["people"], response_model=ClassifyResponse)
    async def classify(body: ClassifyRequest) -> ClassifyResponse:
        """Zero-shot classification of one image: each label's probability under the model's
        scoring (softmax over the labels, or one sigmoid per label)."""
        check_items(1 + len(body.labels))
        if "{}" not in body.template:
            raise InputSpecError(f"template {body.template!r} has no '{{}}' for the label", hint="write e.g. 'a photo of a {}'")
        scorer = service.scorer
        if not scorer.applies(engine.output_specs):
            raise InputSpecError(
                f"model {service.name!r} has no image-text score (scoring: {scorer.kind}) to classify with",
                hint="use /embed or /v2 infer for this model",
            )
        image = decode_image_text(body.image, "image")
        texts = [body.template.format(label) for label in body.labels]
        result = await service.infer(PayloadInputs(images=[image], texts=texts))
        probs = scorer.probabilities(result.outputs[scorer.spec.output])[0]
        return ClassifyResponse(
            model=service.name, labels=body.labels, probs=[float(p) for p in probs],
            top=body.labels[int(np.argmax(probs))], scoring=scorer.kind, truncated=result.truncated,
        )

    @app.get("/metrics", tags=["ops"])
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _memory_sampler(settings: ServerSettings) -> asyncio.Task[None]:
    """Append ``timestamp,rss_bytes`` to the memory log every interval."""
    import os
    import time

    import psutil

    process = psutil.Process(os.getpid())
    path = settings.memory_log

    async def sample() -> None:
        assert path is not None
        new = not os.path.exists(path)
        with open(path, "a", encoding="utf-8") as fh:
            if new:
                fh.write("timestamp,rss_bytes\n")
            while True:
                fh.write(f"{time.time():.3f},{process.memory_info().rss}\n")
                fh.flush()
                await asyncio.sleep(settings.memory_log_interval_s)

    return asyncio.get_running_loop().create_task(sample())
