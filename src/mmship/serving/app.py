"""The FastAPI application: health, metadata and /metrics, the try-it page at ``/``, plus
the routes of every registered payload codec (Open Inference Protocol v2, /embed,
/classify, /rank, /v1/embeddings) answering the operations: infer, embed, classify and
rank (:mod:`mmship.serving.zero_shot`), embed_items (:mod:`mmship.serving.embed_items`).

One app serves one model or several, each under its own name with its own service
(:mod:`mmship.serving.models` resolves a request's ``model``; the v2 model routes are in
:mod:`mmship.serving.v2_models`). A request naming no model gets the first one served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Union

from fastapi import FastAPI, Response

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
from mmship.scoring import unit_rows
from mmship.serving.admission import AdmissionController
from mmship.serving.admission_gate import AdmissionMiddleware, ServerAdmission
from mmship.serving.embed_items import ItemEmbedder
from mmship.serving.engine import Engine
from mmship.serving.http_errors import install_error_handlers
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
from mmship.serving.v2_models import mount_v2_models, path_model
from mmship.serving.zero_shot import ZeroShot
from mmship.serving.zero_shot import check_items as check_request_items

#: What :func:`create_app` serves: one engine (under its bundle's name), or (name, engine)
#: pairs, the first being the default model of requests that name none.
Served = Union[Engine, Sequence[tuple[str, Engine]]]


def served_pairs(served: Served) -> list[tuple[str, Engine]]:
    """``served`` as (name, engine) pairs."""
    if isinstance(served, Engine):
        return [(served.bundle.manifest.name, served)]
    return list(served)


def create_app(served: Served, settings: ServerSettings) -> FastAPI:
    """An app serving one bundle's model, or several under their names (each with its own
    service: preprocessing, batchers, precision, queue bounds and metrics label)."""
    from mmship.preprocess.pixels import silence_pillow_bomb_warnings

    silence_pillow_bomb_warnings()  # the server's own caps refuse large images
    metrics = ServerMetrics()
    services = []
    for name, engine in served_pairs(served):
        service = ModelService(engine, settings, metrics.for_model(name))  # type: ignore[arg-type]
        service.name = name
        services.append(service)
    models = ServedModels(services)
    service = models.default
    decode_pool = ThreadPoolExecutor(max_workers=settings.preprocess_workers, thread_name_prefix="mmship-decode")
    embed_items = ItemEmbedder(models, settings)
    label_cache = LabelEmbeddingCache(settings.label_cache_entries, settings.label_cache_bytes, metrics.registry)
    zero_shot = ZeroShot(models, settings, LabelEmbedder(label_cache))
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = []
        try:
            for each in models.services():
                await each.start()
                started.append(each)
        except BaseException:
            for each in started:
                await each.stop()
            raise
        state["ready"] = True
        sampler = _memory_sampler(settings) if settings.memory_log else None
        try:
            yield
        finally:
            state["ready"] = False
            if sampler is not None:
                sampler.cancel()
            embed_items.close()
            for each in models.services():
                await each.stop()
            decode_pool.shutdown(wait=True)

    names = models.names()
    app = FastAPI(
        title=f"mmship: {', '.join(names)}",
        version=__version__,
        description="Open Inference Protocol v2 plus /embed, /classify, /rank and /v1/embeddings for "
        + ("one multimodal model." if len(names) == 1 else f"{len(names)} multimodal models (default: {names[0]})."),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.models = models
    app.state.metrics = metrics
    app.state.label_cache = label_cache
    install_error_handlers(app)
    # Inner to the guard (added first): unauthenticated requests get 401, refusals are counted per route.
    # Each model its own line (a flooded model refuses only its own requests); the warm-up's
    # graph timings stand in for the cost of a request until the first answer.
    admission = ServerAdmission(
        {
            each.name: AdmissionController(
                settings.latency_budget_ms / 1000, max_inflight=settings.max_queue_rows,
                unmeasured_inflight=2 * each.max_batch_size,
            )
            for each in models.services()
        },
        models.label, metrics.registry,
    )
    metrics.run_listeners.append(admission.observe_run)
    app.state.admission = admission
    app.add_middleware(AdmissionMiddleware, admission=admission)
    app.add_middleware(
        GuardMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
    )
    mount_v2_models(app, models, state)
    check_path_model = path_model(models)

    def check_items(count: int) -> None:
        check_request_items(count, settings)

    # --- inference: every registered codec, on its routes -------------------------------

    async def run_infer(decoded: DecodedRequest) -> InferOutputs:
        service = models.resolve(decoded.inputs.model)
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
        service = models.resolve(inputs.model)
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
        check_model=check_path_model, timeout_s=settings.request_timeout_s, decode_pool=decode_pool,
        model_label=models.label,
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
