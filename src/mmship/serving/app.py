"""The FastAPI application: health, metadata and /metrics, the try-it page at ``/``, plus
the routes of every registered payload codec (Open Inference Protocol v2, /embed,
/classify, /rank, /v1/embeddings) answering the operations: infer, embed, classify and
rank (:mod:`mmship.serving.zero_shot`), embed_items (:mod:`mmship.serving.embed_items`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from mmship import __version__
from mmship.core.errors import InputSpecError
from mmship.core.payload import (
    OPTION_NORMALIZE,
    DecodedRequest,
    EmbedResult,
    InferOutputs,
    PayloadInputs,
    fill_template,
)
from mmship.payload.datatypes import v2_datatype
from mmship.scoring import unit_rows
from mmship.serving.admission import AdmissionController, AdmissionMetrics, AdmissionMiddleware
from mmship.serving.engine import Engine
from mmship.serving.http_errors import HTTPProblem, install_error_handlers
from mmship.serving.embed_items import ItemEmbedder
from mmship.serving.label_cache import LabelEmbeddingCache
from mmship.serving.label_embeddings import LabelEmbedder
from mmship.serving.metrics import ServerMetrics
from mmship.serving.middleware import GuardMiddleware
from mmship.serving.models import ServedModels
from mmship.serving.page import mount_page
from mmship.serving.protocol_extras import mount_protocol_extras
from mmship.serving.routes import mount_codecs
from mmship.serving.service import ModelService
from mmship.serving.settings import ServerSettings
from mmship.serving.zero_shot import ZeroShot
from mmship.serving.zero_shot import check_items as check_request_items


def create_app(engine: Engine, settings: ServerSettings) -> FastAPI:
    """An app serving one bundle's model."""
    metrics = ServerMetrics()
    service = ModelService(engine, settings, metrics)
    decode_pool = ThreadPoolExecutor(max_workers=settings.preprocess_workers, thread_name_prefix="mmship-decode")
    models = ServedModels([service])
    embed_items = ItemEmbedder(models, settings)
    label_cache = LabelEmbeddingCache(settings.label_cache_entries, settings.label_cache_bytes, metrics.registry)
    zero_shot = ZeroShot(models, settings, LabelEmbedder(label_cache))
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
            embed_items.close()
            await service.stop()
            decode_pool.shutdown(wait=True)

    app = FastAPI(
        title=f"mmship: {service.name}",
        version=__version__,
        description="Open Inference Protocol v2 plus /embed and /classify for one multimodal model.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.label_cache = label_cache
    install_error_handlers(app)
    # Inner to the guard (added first): unauthenticated requests get 401, refusals are counted per route.
    # The warm-up's graph timings stand in for the cost of a request until the first answer.
    admission = AdmissionController(
        settings.latency_budget_ms / 1000, max_inflight=settings.max_queue_rows,
        unmeasured_inflight=2 * service.max_batch_size,
    )
    metrics.run_listeners.append(admission.observe_batch)
    app.state.admission = admission
    app.add_middleware(AdmissionMiddleware, controller=admission, metrics=AdmissionMetrics(metrics.registry, admission))
    app.add_middleware(
        GuardMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
    )

    def model_or_404(name: str) -> None:
        if name != service.name:
            raise HTTPProblem(404, f"no model {name!r} here; this server serves {service.name!r}. Fix: use /v2/models/{service.name}")

    def check_items(count: int) -> None:
        check_request_items(count, settings)

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

    # --- inference: every registered codec, on its routes -------------------------------

    async def run_infer(decoded: DecodedRequest) -> InferOutputs:
        check_items(service.count_items(decoded.inputs))
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
        return InferOutputs(model=service.name, outputs=outputs, truncated=result.truncated)

    async def run_embed(decoded: DecodedRequest) -> EmbedResult:
        """Embed images and texts; normalised to unit length by default."""
        inputs = decoded.inputs
        check_items(service.count_items(inputs))
        result = await service.infer(PayloadInputs(images=inputs.images, texts=inputs.texts))
        outputs = {k: v for k, v in result.outputs.items() if k != service.scorer.spec.output}
        if inputs.options.get(OPTION_NORMALIZE, True):
            outputs = {k: unit_rows(v) for k, v in outputs.items()}
        dim = int(next(iter(outputs.values())).shape[1])
        return EmbedResult(
            model=service.name, dim=dim, image_embeds=outputs.pop("image_embeds", None),
            text_embeds=outputs.pop("text_embeds", None), embeds=outputs, truncated=result.truncated,
        )

    from mmship.core.manager import get_plugin_manager

    codecs = get_plugin_manager().codecs()
    mount_codecs(
        app, codecs,
        {"infer": run_infer, "embed": run_embed, "classify": zero_shot.classify, "rank": zero_shot.rank, "embed_items": embed_items},
        check_model=model_or_404, timeout_s=settings.request_timeout_s, decode_pool=decode_pool,
    )
    mount_protocol_extras(app, codecs, models)
    mount_page(app)

    @app.get("/metrics", tags=["ops"])
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def label_prompts(template: str, labels: list[str]) -> list[str]:
    """Each label put into ``template`` at its one ``{}`` by :meth:`str.replace`. A
    template with any other brace (a name, an index, a format spec such as
    ``{:>999999999}``) is refused with a 400; nothing is ever formatted."""
    return fill_template(template, labels)


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
