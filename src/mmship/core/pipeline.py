"""``mmship build``: load -> align -> export -> quantize -> optimize -> validate -> write.

Each stage is a hook (``mmship_align_preprocess``, ``mmship_export``, ``mmship_quantize``,
``mmship_optimize``, ``mmship_validate``); this module only orders them, records what they
measured and writes the bundle atomically. It imports no plugin.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmship.core.adapter import Adapter, LoadOptions
from mmship.core.bundle import (
    BundleManifest,
    BundleWriter,
    ChosenVariant,
    GraphFile,
    SourceInfo,
)
from mmship.core.errors import BuildError
from mmship.core.manager import PluginManager, get_plugin_manager
from mmship.core.model_source import (
    looks_like_hub_id,
    read_hf_config,
    read_weight_shapes,
    resolve_source,
)
from mmship.core.progress import StageReporter
from mmship.core.specs import (
    PRECISIONS,
    ExportedGraph,
    PreprocessSpec,
    ScoringSpec,
    ServingParams,
)
from mmship.core.stages import (
    BuildContext,
    ExportOptions,
    OptimizeOptions,
    QuantizeOptions,
    ValidateOptions,
)
from mmship.core.threads import in_threads
from mmship.core.variants import BASE_RUNTIME, Variant, VariantPlan, plan_variants

#: Processor and tokenizer files copied into the bundle.
PROCESSOR_FILES = (
    "preprocessor_config.json", "processor_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json",
    "chat_template.jinja", "chat_template.json",
)


@dataclass
class BuildRequest:
    """Everything ``mmship build`` was asked for."""

    source: str
    out: Path
    adapter: str = "auto"
    #: Precisions to build (None: each runtime's defaults, see :func:`plan_variants`).
    precisions: list[str] | None = None
    #: Runtimes to build for (None: onnxruntime and every other installed runtime).
    runtimes: list[str] | None = None
    #: Time the verified variants and record the fastest per tower (False: no timing; the
    #: onnxruntime graph at ``serving_params.precision`` is served by default).
    measure: bool = True
    revision: str | None = None
    trust_remote_code: bool = False
    serving_params: ServingParams | None = None
    name: str | None = None
    max_accuracy_loss: float = 0.005
    export: ExportOptions = field(default_factory=ExportOptions)
    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)
    optimize: OptimizeOptions = field(default_factory=OptimizeOptions)
    overwrite: bool = False


def _check_precisions(precisions: list[str] | None) -> list[str] | None:
    if precisions is None:
        return None
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise BuildError(
            f"unknown precision {', '.join(unknown)}; expected one of {', '.join(PRECISIONS)}",
            hint="pass e.g. --precision fp32 --precision int8",
        )
    return list(dict.fromkeys(precisions))  # onnxruntime's fp32 is always built (see plan_variants)


def _build_variant(
    hook: Any, variant: Variant, fp32: list[ExportedGraph], work: Path, request: BuildRequest, context: BuildContext
) -> list[ExportedGraph] | str:
    """The graphs of one variant, or why it was left out (an optional variant that could
    not be built, or a precision no plugin builds for its runtime). The towers are built
    in threads, one per graph (see the ``mmship_quantize`` hookspec): NNCF spends much of a
    tower's time in Python, where the other tower's native work can run."""

    def one(graph: ExportedGraph) -> ExportedGraph | None:
        source = graph if variant.runtime == BASE_RUNTIME else graph.model_copy(update={"runtime": variant.runtime})
        return hook.mmship_quantize(
            graph=source, precision=variant.precision, workdir=work, options=request.quantize, context=context
        )

    converted = []
    for result, error in in_threads(one, fp32, name="mmship-quantize"):
        if isinstance(error, BuildError):
            if variant.required:
                raise error
            return error.message
        if error is not None:
            raise error
        if result is None:
            return f"no plugin builds {variant.precision} graphs for {variant.runtime}"
        converted.append(result)
    return converted


def _timed(plan: VariantPlan, request: BuildRequest) -> tuple[str, ...]:
    """The variants timed for the choice: with a deploy config's serving precision, only
    the variants at that precision (the choice stays within what the config asks)."""
    if not request.measure:
        return ()
    if request.serving_params is None:
        return plan.timed()
    wanted = request.serving_params.precision
    return tuple(v.key for v in plan.variants if v.timed and v.precision == wanted)


def _declined(skipped: dict[str, str], plan: VariantPlan, graphs: dict[str, list[ExportedGraph]], named: bool) -> None:
    """Fail for a required variant no plugin builds, unless its precision was built for
    another runtime (``--precision bf16`` builds OpenVINO's bf16, not onnxruntime's)."""
    built = {g.precision for items in graphs.values() for g in items}
    for variant in plan.variants:
        if variant.required and variant.key in skipped and (named or variant.precision not in built):
            raise BuildError(
                f"no plugin builds {variant.precision} graphs for {variant.runtime}: {skipped[variant.key]}",
                hint="check `mmship plugins`, or build another precision or runtime",
            )


def _optimized(
    hook: Any, graphs: dict[str, list[ExportedGraph]], plan: VariantPlan, work: Path, request: BuildRequest
) -> tuple[dict[str, list[ExportedGraph]], dict[str, Any], str]:
    """Every variant's graphs through ``mmship_optimize``, with the report and a summary;
    the onnxruntime fp32 graph of a build for another runtime (the accuracy reference and
    fallback, not a candidate) is kept as exported: onnxruntime's offline passes are the
    ones it applies online when it loads a graph, and timing them cost such a build ~8 s."""
    reference_only = {v.key for v in plan.variants if not v.timed} & set(graphs)
    optimized = {
        key: items if key in reference_only else [
            hook.mmship_optimize(graph=g, workdir=work, options=request.optimize) or g for g in items
        ]
        for key, items in graphs.items()
    }
    report = {f"{g.name}.{key}": g.report.get("optimize") for key, items in optimized.items()
              if key not in reference_only for g in items}
    applied = sum(1 for v in report.values() if v and v.get("applied"))
    detail = f"applied to {applied} of {len(report)} graphs" + "".join(
        f"; {key} kept as exported (reference)" for key in sorted(reference_only)
    )
    return optimized, report, detail


def _choose_adapter(manager: PluginManager, name: str, hf_config: dict[str, Any], folder: Path) -> Adapter:
    registry = manager.adapters()
    cls = registry.detect(hf_config, where=str(folder / "config.json")) if name == "auto" else registry.get(name)
    return cls(hf_config)


def _checked_scoring(adapter: Adapter, scoring: ScoringSpec) -> ScoringSpec:
    """``scoring``, once the embeddings it compares are known to be among the adapter's outputs."""
    outputs = [s.name for s in adapter.output_specs()]
    missing = [n for n in (scoring.image_embeds, scoring.text_embeds) if n not in outputs] if scoring.scores else []
    if missing:
        raise BuildError(
            f"adapter {adapter.name!r} scores {scoring.kind} between {scoring.image_embeds!r} and "
            f"{scoring.text_embeds!r}, but it has no output {', '.join(repr(m) for m in missing)} (outputs: {', '.join(outputs)})",
            hint="make the adapter's scoring() name two of its embedding outputs, or return ScoringSpec(kind='none')",
        )
    return scoring


def _copy_processor(folder: Path, dest: Path) -> list[str]:
    copied = []
    for name in PROCESSOR_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, dest / name)
            copied.append(name)
    return copied


def _manifest(request: BuildRequest, adapter: Adapter, **fields: Any) -> BundleManifest:
    is_hub = looks_like_hub_id(request.source) and not Path(request.source).exists()
    return BundleManifest(
        name=request.name or Path(request.source.rstrip("/")).name,
        adapter=adapter.name,
        kind=adapter.bundle_kind,
        source=SourceInfo(
            hub_id=request.source if is_hub else None,
            path=None if is_hub else str(Path(request.source).resolve()),
            revision=request.revision,
        ),
        inputs=adapter.input_specs(),
        outputs=adapter.output_specs(),
        graph_specs=adapter.graph_specs(),
        serving_params=request.serving_params or adapter.default_serving_params(),
        **fields,
    )


def _write_weights_bundle(
    request: BuildRequest, writer: BundleWriter, adapter: Adapter, folder: Path,
    reporter: StageReporter, report: dict[str, Any],
) -> Path:
    """A bundle of the safetensors checkpoint, config and processor (no graphs), for
    targets that serve Hugging Face checkpoints themselves."""
    with reporter.stage("write", "copying checkpoint and processor") as rec:
        hf_dir = writer.dir("hf")
        for path in sorted(folder.iterdir()):
            if path.is_file() and (path.suffix in {".safetensors", ".json", ".txt", ".model", ".jinja"}):
                shutil.copy2(path, hf_dir / path.name)
        _copy_processor(folder, writer.dir("processor"))
        report["stages"] = {t.name: round(t.seconds, 3) for t in reporter.timings}
        path = writer.commit(_manifest(request, adapter, precisions=[]), report)
        rec.detail = str(path)
    return path


def _write_graphs(
    graphs: dict[str, list[ExportedGraph]], graph_dir: Path, validation: dict[str, Any], manager: PluginManager
) -> list[GraphFile]:
    """Move every variant's files into ``graphs/`` as ``<graph>.<variant key><suffix>``
    (with the files the runtime says belong to the graph, e.g. OpenVINO's ``.bin``); a
    file two variants share (OpenVINO's fp32 IR, loaded as fp32 and as bf16) is written
    once. Each entry carries its accuracy and timing figures."""
    from mmship.evaluation.variants import graph_accuracy

    runtimes = manager.runtimes()
    moved: dict[Path, str] = {}
    files: list[GraphFile] = []
    for key, items in graphs.items():
        for graph in items:
            source = Path(graph.path)
            if source not in moved:
                stem = f"{graph.name}.{key}"
                for part in runtimes.get(graph.runtime).graph_files(source):
                    shutil.move(str(part), graph_dir / f"{stem}{part.suffix}")
                moved[source] = f"graphs/{stem}{source.suffix}"
            timing = (validation.get("timing") or {}).get(key, {}).get(graph.name, {})
            files.append(
                GraphFile(
                    name=graph.name, precision=graph.precision, file=moved[source],
                    inputs=[s.name for s in graph.inputs], outputs=[s.name for s in graph.outputs],
                    opset=graph.opset, runtime=graph.runtime, runtime_options=graph.runtime_options,
                    accuracy=graph_accuracy(validation.get("accuracy") or {}, key, graph), timing_ms=timing,
                )
            )
    return files


def _serving_params(request: BuildRequest, adapter: Adapter, files: list[GraphFile]) -> ServingParams:
    """The deploy config's serving params, else the adapter's; ``precision`` is the one
    served where the chosen variants cannot be (onnxruntime's fastest: int8 on a CPU)."""
    base = {g.precision for g in files if g.runtime == BASE_RUNTIME}
    if request.serving_params is not None:
        serving = request.serving_params
    else:
        serving = adapter.default_serving_params().model_copy(update={"precision": "int8" if "int8" in base else "fp32"})
    if serving.precision not in {g.precision for g in files}:
        serving = serving.model_copy(update={"precision": "int8" if "int8" in base else "fp32"})
    return serving


def build(request: BuildRequest, reporter: StageReporter | None = None) -> Path:
    """Build a verified bundle at ``request.out``; returns its path."""
    reporter = reporter or StageReporter()
    manager = get_plugin_manager()
    hook = manager.hook
    precisions = _check_precisions(request.precisions)
    plan = plan_variants(precisions, request.runtimes, manager.runtimes())
    writer = BundleWriter(request.out, overwrite=request.overwrite)
    with writer, tempfile.TemporaryDirectory(prefix="mmship-build-") as scratch:
        work = Path(scratch)
        report: dict[str, Any] = {"stages": {}}

        with reporter.stage("load", f"loading {request.source}") as rec:
            folder = resolve_source(request.source, request.revision)
            hf_config = read_hf_config(folder)
            adapter = _choose_adapter(manager, request.adapter, hf_config, folder)
            adapter.check_dimensions(read_weight_shapes(folder))
            rec.detail = f"adapter {adapter.name}"
            if adapter.bundle_kind == "graphs":
                model = adapter.load_model(folder, LoadOptions(request.revision, request.trust_remote_code))
                adapter_data = adapter.bundle_data(model)
                scoring = _checked_scoring(adapter, adapter.scoring(model))
        if adapter.bundle_kind == "weights":  # served from the checkpoint: nothing to export
            return _write_weights_bundle(request, writer, adapter, folder, reporter, report)

        with reporter.stage("align", "aligning preprocessing with the HF processor") as rec:
            preprocess: PreprocessSpec | None = hook.mmship_align_preprocess(adapter=adapter, source=folder)
            if preprocess is None:
                raise BuildError(
                    f"no plugin could read the processor files in {folder}",
                    hint="save the processor next to the model (processor.save_pretrained(folder))",
                )
            copied = _copy_processor(folder, writer.dir("processor"))
            shutil.copy2(folder / "config.json", writer.dir("hf") / "config.json")
            rec.detail = f"{len(copied)} processor files"

        with reporter.stage("export", "exporting ONNX graphs") as rec:
            graphs_fp32: list[ExportedGraph] | None = hook.mmship_export(
                adapter=adapter, model=model, workdir=work, options=request.export
            )
            if not graphs_fp32:
                raise BuildError(f"no plugin exported adapter {adapter.name!r}", hint="check `mmship plugins`")
            report["parity"] = {g.name: g.report.get("parity", {}) for g in graphs_fp32}
            worst = min((g.report.get("parity", {}).get("min_cosine", 1.0) for g in graphs_fp32), default=1.0)
            rec.detail = f"{len(graphs_fp32)} graphs, parity min cosine {worst:.6f}"
        del model

        graphs: dict[str, list[ExportedGraph]] = {"fp32": graphs_fp32}
        context = BuildContext(
            adapter=adapter, preprocess=preprocess, processor_dir=writer.dir("processor"), workdir=work, scoring=scoring
        )
        report["variants_skipped"] = skipped = {}
        for variant in plan.variants[1:]:
            label = f"quantize {variant.key}" if variant.runtime == BASE_RUNTIME else f"variant {variant.key}"
            with reporter.stage(label, f"building {variant.runtime} {variant.precision}") as rec:
                result = _build_variant(hook, variant, graphs_fp32, work, request, context)
                if isinstance(result, str):
                    skipped[variant.key] = result
                    rec.detail = f"left out: {result}"
                    continue
                graphs[variant.key] = result
                rec.detail = ", ".join(sorted({n for g in result for n in g.notes}))
        _declined(skipped, plan, graphs, request.runtimes is not None)
        report["variant_notes"] = plan.notes

        with reporter.stage("optimize", "optimizing graphs (kept only when faster)") as rec:
            graphs, report["optimize"], rec.detail = _optimized(hook, graphs, plan, work, request)

        with reporter.stage("validate", "validating batch sizes and accuracy") as rec:
            validation = hook.mmship_validate(
                graphs=graphs, context=context,
                options=ValidateOptions(
                    max_accuracy_loss=request.max_accuracy_loss, optional=plan.optional(), timed=_timed(plan, request),
                    timing_batch=min(16, (request.serving_params or adapter.default_serving_params()).max_batch_size),
                ),
            )
            if validation is None:
                raise BuildError("no plugin validated the graphs", hint="check `mmship plugins` for a failed validate plugin")
            report.update(validation)
            padding = (validation.get("text_padding") or {}).get("padding")
            if preprocess.text is not None and padding and padding != preprocess.text.padding:
                preprocess = preprocess.model_copy(
                    update={"text": preprocess.text.model_copy(update={"padding": padding})}
                )
            accuracy = validation.get("accuracy") or {}
            dropped = validation.get("dropped") or {}
            graphs = {key: items for key, items in graphs.items() if key not in dropped}
            rec.detail = ", ".join(f"{p}: -{f.get('accuracy_loss', 0):.3%}" for p, f in accuracy.items() if p != "fp32")
            rec.detail += "".join(f"; left out {key}" for key in dropped) + "".join(
                f"; {tower}: {c['runtime']} {c['precision']}" for tower, c in (validation.get("chosen") or {}).items()
            )

        with reporter.stage("write", "writing the bundle") as rec:
            files = _write_graphs(graphs, writer.dir("graphs"), validation, manager)
            report["stages"] = {t.name: round(t.seconds, 3) for t in reporter.timings}
            serving = _serving_params(request, adapter, files)
            chosen = {tower: ChosenVariant(**figures) for tower, figures in (validation.get("chosen") or {}).items()}
            request.serving_params = serving
            manifest = _manifest(
                request, adapter, graphs=files, preprocess=preprocess, adapter_data=adapter_data, scoring=scoring,
                precisions=list(dict.fromkeys(g.precision for g in files)), chosen=chosen,
            )
            path = writer.commit(manifest, report)
            rec.detail = str(path)
    return path
