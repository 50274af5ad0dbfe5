"""The model service: request inputs -> preprocessing -> batched graphs -> outputs.

Decoding, resizing and tokenizing run in a small thread pool, off the event loop and off
the inference threads; graphs run through one :class:`DynamicBatcher` each. A request of
images only that finds its graph's batcher idle is decoded, resized and run in one trip to
the batcher's thread (:meth:`DynamicBatcher.run_alone`).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmship.core.errors import InputSpecError
from mmship.core.payload import PayloadInputs
from mmship.payload.datatypes import v2_datatype
from mmship.preprocess.image_limits import ImageLimits
from mmship.preprocess.tokens import tokenizer_pad_value
from mmship.scoring import Scorer
from mmship.serving.batcher import DeadlineExceededError, DynamicBatcher, stack_rows
from mmship.serving.deadlines import current_deadline, remaining, within
from mmship.serving.engine import Engine, GraphRunner
from mmship.serving.metrics import ServerMetrics
from mmship.serving.settings import ServerSettings
from mmship.serving.validation import check_tensor, check_token_tensors

HIGH_LEVEL_INPUTS = ("image", "text")
#: Requests with at most this many texts and characters are tokenized on the event loop
#: (~0.1 ms a caption), the rest in the preprocessing pool.
INLINE_TEXTS = 8
INLINE_TEXT_CHARS = 1000


@dataclass
class InferResult:
    """Outputs by name, plus which texts were truncated."""

    outputs: dict[str, np.ndarray]
    truncated: list[bool] = field(default_factory=list)
    #: Tokens each text took, special tokens included, padding not.
    text_tokens: list[int] = field(default_factory=list)


def pad_stacker(pad_ids: dict[str, int]):
    """A stacker padding axis 1 of the named inputs to the batch's longest row."""

    def stack(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        longest = max(item[name].shape[1] for item in items for name in pad_ids)
        padded = []
        for item in items:
            fixed = dict(item)
            for name, pad in pad_ids.items():
                value = item[name]
                if value.shape[1] < longest:
                    fill = np.full((value.shape[0], longest - value.shape[1]), pad, dtype=value.dtype)
                    fixed[name] = np.concatenate([value, fill], axis=1)
            padded.append(fixed)
        return stack_rows(padded)

    return stack


class ModelService:
    """One served model: preprocessing, batchers, scoring (:attr:`scorer`)."""

    def __init__(self, engine: Engine, settings: ServerSettings, metrics: ServerMetrics) -> None:
        from mmship.preprocess.pixels import ImagePreprocessor
        from mmship.preprocess.tokens import TextTokenizer

        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        manifest = engine.bundle.manifest
        self.name = manifest.name
        self.preprocess = manifest.preprocess
        self.scorer = Scorer.for_manifest(manifest)
        serving = manifest.serving_params
        self.max_batch_size = settings.max_batch_size or serving.max_batch_size
        self.max_delay_ms = serving.max_delay_ms if settings.max_delay_ms is None else settings.max_delay_ms
        limits = ImageLimits(
            max_pixels=settings.max_image_pixels, max_request_pixels=settings.max_request_pixels,
            max_aspect_ratio=settings.max_aspect_ratio,
        )
        self.images = (
            ImagePreprocessor(self.preprocess.image, limits=limits, jpeg_scaled_decode=settings.jpeg_scaled_decode)
            if self.preprocess and self.preprocess.image
            else None
        )
        self.tokenizer = (
            TextTokenizer(engine.bundle.path("processor"), self.preprocess.text)
            if self.preprocess and self.preprocess.text
            else None
        )
        self.max_text_length = self.preprocess.text.max_length if self.preprocess and self.preprocess.text else None
        recorded_vocab = self.preprocess.text.vocab_size if self.preprocess and self.preprocess.text else None
        #: Token ids a client may send: the manifest's, or for bundles built before it was
        #: recorded, the tokenizer's vocabulary.
        self.vocab_size = recorded_vocab or (self.tokenizer.vocab_size if self.tokenizer is not None else None)
        self._pool = ThreadPoolExecutor(max_workers=settings.preprocess_workers, thread_name_prefix="mmship-prep")
        self.batchers = {name: self._batcher(graph) for name, graph in engine.graphs.items()}
        image_inputs = {name for name, spec in engine.input_specs.items() if spec.modality == "image"}
        image_graphs = engine.graphs_for(image_inputs) if self.images is not None and image_inputs else []
        #: The one graph a request of images only runs (None: none, or several).
        self._image_graph = image_graphs[0] if len(image_graphs) == 1 else None

    def _pad_ids(self, graph: GraphRunner) -> dict[str, int]:
        """What each text input of ``graph`` is padded with: the manifest's ``pad_ids``, or for
        bundles built before they were recorded, what the tokenizer pads each output with."""
        text = self.preprocess.text if self.preprocess else None
        recorded = text.pad_ids if text is not None else {}
        pad_id = self.tokenizer.pad_id if self.tokenizer is not None else 0
        names = [s.name for s in graph.inputs if s.modality == "text"]
        return {n: recorded[n] if n in recorded else tokenizer_pad_value(n, pad_id) for n in names}

    def _batcher(self, graph: GraphRunner) -> DynamicBatcher:
        pad_ids = self._pad_ids(graph)
        stacker = pad_stacker(pad_ids) if pad_ids else stack_rows
        return DynamicBatcher(
            graph.spec.name, graph, max_batch_size=self.max_batch_size, max_delay_ms=self.max_delay_ms,
            max_queue_rows=self.settings.max_queue_rows, stacker=stacker, observer=self.metrics.observer(),
            concurrency=graph.streams, alone_runner=graph.lone,
        )

    async def start(self) -> None:
        """Warm up every graph (batch 1 and the max batch) and start the batchers."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.engine.warm_up, (1, min(self.max_batch_size, 8)))
        await loop.run_in_executor(None, self._time_graphs, min(self.max_batch_size, 8))
        for batcher in self.batchers.values():
            batcher.start()

    def _time_graphs(self, batch: int) -> None:
        """Run every graph once more at ``batch`` rows and report the time as a batch of
        ``batch`` requests, so admission control knows the model's cost before the first request."""
        import time

        from mmship.evaluation.feeds import example_feeds

        observer = self.metrics.observer()
        for name, graph in self.engine.graphs.items():
            feeds = example_feeds(graph.inputs, batch=batch)
            start = time.perf_counter()
            graph(feeds)
            observer.on_run(name, batch, batch, time.perf_counter() - start)

    async def stop(self) -> None:
        """Drain the batchers and stop the preprocessing pool."""
        for batcher in self.batchers.values():
            await batcher.stop()
        self._pool.shutdown(wait=True)

    # --- inputs ---------------------------------------------------------------------

    def metadata_inputs(self) -> list[dict[str, Any]]:
        """v2 metadata: raw tensor inputs plus the high-level BYTES inputs."""
        specs = [
            {"name": s.name, "datatype": v2_datatype(s.dtype), "shape": s.shape}
            for s in self.engine.input_specs.values()
        ]
        if self.images is not None:
            specs.append({"name": "image", "datatype": "BYTES", "shape": [-1]})
        if self.tokenizer is not None:
            specs.append({"name": "text", "datatype": "BYTES", "shape": [-1]})
        return specs

    def count_items(self, inputs: PayloadInputs) -> int:
        """Items of a request: images + texts + the rows of its raw tensors (the largest
        batch per modality: ``input_ids`` and its ``attention_mask`` are the same texts)."""
        specs = self.engine.input_specs
        rows: dict[str, int] = {}
        for name, value in inputs.tensors.items():
            shape = getattr(value, "shape", ())
            count = int(shape[0]) if len(shape) else 1
            group = specs[name].modality if name in specs else name
            rows[group] = max(rows.get(group, 0), count)
        return len(inputs.images) + len(inputs.texts) + sum(rows.values())

    def check_text_chars(self, count: int, what: str = "texts") -> None:
        """Refuse a request whose texts hold more characters than the server takes, before
        any is tokenized (a 1 MB one-word text costs seconds before it is cut to length)."""
        cap = self.settings.max_request_text_chars
        if count > cap:
            raise InputSpecError(
                f"the request's {what} hold {count:,} characters together, more than the cap of {cap:,} per request",
                hint=f"send shorter or fewer texts (the model reads at most {self.max_text_length} tokens of each), "
                "or raise the server's --max-text-chars",
            )

    async def _features(
        self, inputs: PayloadInputs, deadline: float
    ) -> tuple[dict[str, np.ndarray], list[bool], list[int]]:
        specs = self.engine.input_specs
        unknown = sorted(set(inputs.tensors) - set(specs))
        if unknown:
            accepted = sorted(specs) + [n for n, ok in (("image", self.images), ("text", self.tokenizer)) if ok]
            raise InputSpecError(
                f"unknown input {', '.join(repr(u) for u in unknown)}; model {self.name!r} takes {', '.join(accepted)}",
                hint="rename the input, or check GET /v2/models/" + self.name,
            )
        text_chars = sum(len(t) if isinstance(t, str) else 0 for t in inputs.texts)
        if inputs.texts:
            self.check_text_chars(text_chars)
        feeds = {name: check_tensor(specs[name], value, self.max_text_length) for name, value in inputs.tensors.items()}
        check_token_tensors(feeds, specs, self.vocab_size)
        loop = asyncio.get_running_loop()
        truncated: list[bool] = []
        text_tokens: list[int] = []
        jobs = []
        if inputs.images:
            if self.images is None:
                raise InputSpecError(f"model {self.name!r} takes no images", hint="send only texts")
            if any(s.modality == "image" and s.name in feeds for s in specs.values()):
                raise InputSpecError("send images either as 'image' or as 'pixel_values', not both", hint="drop one")
            jobs.append(loop.run_in_executor(self._pool, functools.partial(self.images, inputs.images, deadline)))
        inline_tokens = None
        if inputs.texts:
            if self.tokenizer is None:
                raise InputSpecError(f"model {self.name!r} takes no texts", hint="send only images")
            if len(inputs.texts) <= INLINE_TEXTS and text_chars <= INLINE_TEXT_CHARS:
                # A caption tokenizes in ~0.1 ms: less than the hop to the pool and back.
                inline_tokens = self.tokenizer(inputs.texts)
            else:
                jobs.append(loop.run_in_executor(self._pool, self.tokenizer, inputs.texts))
        results = await within(asyncio.gather(*jobs), deadline, "preprocessing its images and texts") if jobs else []
        index = 0
        if inputs.images:
            pixels = results[index]
            index += 1
            for spec in specs.values():
                if spec.modality == "image":
                    feeds[spec.name] = pixels
        if inputs.texts:
            tokens = inline_tokens if inline_tokens is not None else results[index]
            truncated = list(tokens.truncated)
            text_tokens = [int(n) for n in tokens.attention_mask.sum(axis=1)]
            for spec in specs.values():
                if spec.modality == "text" and spec.name in tokens.arrays:
                    feeds[spec.name] = tokens.arrays[spec.name]
        if any(s.modality == "text" for s in specs.values()) and "input_ids" in feeds and "attention_mask" in specs:
            feeds.setdefault("attention_mask", np.ones_like(feeds["input_ids"]))
        return feeds, truncated, text_tokens

    def _runs_alone(self, inputs: PayloadInputs) -> GraphRunner | None:
        """The image graph a request of images only may be prepared and run through in one
        trip (:meth:`DynamicBatcher.run_alone`), when that graph's batcher can take it so
        (:meth:`DynamicBatcher.can_run_alone`); else ``None`` (the request takes the usual path)."""
        graph = self._image_graph
        if graph is None or not inputs.images or inputs.texts or inputs.tensors:
            return None
        return graph if self.batchers[graph.spec.name].can_run_alone(len(inputs.images)) else None

    def _image_feeds(self, graph: GraphRunner, images: list[Any], deadline: float) -> dict[str, np.ndarray]:
        """``graph``'s feeds for ``images`` (run in the batcher's thread by :meth:`infer`);
        a deadline passed between images is answered as in :meth:`_features`."""
        assert self.images is not None
        try:
            pixels = self.images(images, deadline)
        except TimeoutError:
            raise DeadlineExceededError("the request did not finish preprocessing its images before its deadline") from None
        return {spec.name: pixels for spec in graph.inputs}

    def _plan(self, feeds: dict[str, np.ndarray], requested: list[str]) -> list[GraphRunner]:
        runnable = self.engine.graphs_for(set(feeds))
        single = [g for g in runnable if len({s.modality for s in g.inputs}) == 1]
        chosen = [
            g for g in runnable
            if g in single or not single or any(o.name in requested for o in g.outputs)
        ]
        if not chosen:
            needs = "; ".join(f"{g.spec.name}: {', '.join(s.name for s in g.inputs)}" for g in self.engine.graphs.values())
            raise InputSpecError(
                f"the inputs sent ({', '.join(sorted(feeds)) or 'none'}) run none of model {self.name!r}'s graphs ({needs})",
                hint="send 'image' and/or 'text' (or the raw tensors a graph needs)",
            )
        for graph in chosen:
            sizes = {feeds[s.name].shape[0] for s in graph.inputs}
            if len(sizes) > 1:
                raise InputSpecError(
                    f"graph {graph.spec.name!r} pairs its inputs row by row, but their batch sizes differ: {sorted(sizes)}",
                    hint="send as many texts as images",
                )
        return chosen

    async def infer(
        self, inputs: PayloadInputs, requested: list[str] | None = None, deadline: float | None = None
    ) -> InferResult:
        """Run the graphs the inputs allow; add the model's image-text logits (the bundle's
        ``scoring``, served as ``logits_per_image``) when images and texts were both sent.

        :param deadline: ``time.monotonic()`` by which the answer is due (default: the
            current request's, see :mod:`mmship.serving.deadlines`); preprocessing,
            tokenizing, queueing and running share what is left of it.
        """
        if not (inputs.images or inputs.texts or inputs.tensors):
            raise InputSpecError("the request has no inputs", hint="send at least one image or text")
        requested = requested or []
        deadline = deadline if deadline is not None else current_deadline(self.settings.request_timeout_s)
        alone = self._runs_alone(inputs)
        if alone is not None:
            outputs = await self.batchers[alone.spec.name].run_alone(
                functools.partial(self._image_feeds, alone, inputs.images, deadline),
                remaining(deadline, "preprocessing and running its images"),
            )
            self.scorer.add_logits(outputs)
            return InferResult(outputs)
        feeds, truncated, text_tokens = await self._features(inputs, deadline)
        graphs = self._plan(feeds, requested)
        timeout = remaining(deadline, "queueing for the model")
        results = await asyncio.gather(
            *(self.batchers[g.spec.name].submit({s.name: feeds[s.name] for s in g.inputs}, timeout) for g in graphs)
        )
        outputs: dict[str, np.ndarray] = {}
        for result in results:
            outputs.update(result)
        self.scorer.add_logits(outputs)
        if truncated and any(truncated):
            self.metrics.truncated.inc(sum(truncated))
        return InferResult(outputs, truncated, text_tokens)
