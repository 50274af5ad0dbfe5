"""Validate stage (plugin ``validate``): every graph runs at the batch sizes that matter,
each precision's accuracy against fp32 is measured on the probe set of real photos and
captions, and padding texts to the batch's longest is verified before it is recorded;
what decoding large JPEGs at a reduced scale does to the fp32 image embeddings is measured
for ``mmship serve --jpeg-scaled-decode`` (:mod:`mmship.evaluation.scaled_decode`).

A precision whose accuracy loss (1 - mean cosine to fp32 of its worst output) exceeds
``options.max_accuracy_loss`` stops the build with the figures and the ways out; an
optional variant (``options.optional``: e.g. OpenVINO's, built by default) is left out
instead, with the reason. The variants that passed are then timed (``options.timed``) and
the fastest per tower is chosen; variants close to the fastest are timed again with it,
head to head (:mod:`mmship.evaluation.variants`).

The variants are checked one at a time: the fp32 reference's sessions are loaded once and
kept, each other variant's are loaded once for all its checks and released before the next
(a full build has ten towers; holding them all would cost gigabytes).
"""

from __future__ import annotations

from typing import Any

from mmship import hookimpl
from mmship.core.errors import BuildError
from mmship.core.specs import ExportedGraph, PreprocessSpec
from mmship.core.stages import BuildContext, ValidateOptions
from mmship.core.variants import variant_key
from mmship.evaluation.accuracy import AccuracyProbe, check_batches, verify_longest_padding
from mmship.evaluation.scaled_decode import measure_scaled_decode
from mmship.evaluation.sessions import GraphSessions
from mmship.evaluation.variants import Rematch, choose_fastest, head_to_head, time_variant


def over_budget(key: str, figures: dict[str, Any], limit: float) -> str | None:
    """Why the variant ``key`` fails the accuracy budget, or ``None`` when it meets it."""
    loss = figures.get("accuracy_loss", 0.0)
    if key == "fp32" or loss <= limit:
        return None
    return (f"{key} loses {loss:.2%} accuracy against fp32 (mean embedding cosine "
            f"{figures.get('mean_cosine', 0):.5f}); the limit is {limit:.2%}")


def budget_error(key: str, reason: str) -> BuildError:
    """The error that stops a build whose required variant ``key`` is over the accuracy budget."""
    return BuildError(
        reason,
        hint=f"drop --precision {key.rsplit('-', 1)[-1]}, try --int8-mode static or --per-channel, "
        "or raise --max-accuracy-loss",
    )


def _padded(preprocess: PreprocessSpec, text_padding: dict[str, Any]) -> PreprocessSpec:
    padding = text_padding.get("padding")
    if preprocess.text is None or not padding or padding == preprocess.text.padding:
        return preprocess
    return preprocess.model_copy(update={"text": preprocess.text.model_copy(update={"padding": padding})})


def _check_variant(
    key: str, items: list[ExportedGraph], options: ValidateOptions, probe: AccuracyProbe,
    sessions: GraphSessions, figures: dict[str, Any],
) -> str | None:
    """Batch checks and accuracy of one variant, recorded in ``figures``; why an optional
    variant is left out (``None``: it passed). A required variant that fails raises."""
    if key != "fp32":
        try:
            sessions.preload(items)
            figures["batches"].update(check_batches({key: items}, options.batch_sizes, sessions))
        except BuildError as exc:
            if key not in options.optional:
                raise
            return exc.message
    figures["accuracy"][key] = probe.figures(None if key == "fp32" else items)
    reason = over_budget(key, figures["accuracy"][key], options.max_accuracy_loss)
    if reason is not None and key not in options.optional:
        raise budget_error(key, reason)
    return reason


def _rematch(options: ValidateOptions, sessions: GraphSessions, reference: list[ExportedGraph],
             record: list[dict[str, Any]]) -> Rematch:
    """Times the close variants of a tower together, head to head at the serving batch,
    recording the figures in ``record``; their sessions are loaded for it and released
    after it (the fp32 reference's are kept)."""
    def rematch(close: list[ExportedGraph]) -> list[float]:
        sessions.preload(close)
        try:
            measured = head_to_head(close, options.timing_batch, sessions=sessions)
        finally:
            sessions.release(g for g in close if g not in reference)
        keys = [variant_key(g.runtime, g.precision) for g in close]
        record.append({"tower": close[0].name, "batch_size": options.timing_batch, "ms": dict(zip(keys, measured))})
        return measured

    return rematch


@hookimpl(trylast=True)
def mmship_validate(
    graphs: dict[str, list[ExportedGraph]], context: BuildContext, options: ValidateOptions
) -> dict[str, Any]:
    """Batch checks, padding verification and the accuracy report, budget enforced; then
    the variants in ``options.timed`` that passed are timed and the fastest per tower is
    chosen (``chosen``; variants close to the fastest are timed again with it, figures in
    ``head_to_head``). Optional variants that fail a check are listed in ``dropped``; the
    fp32 image embeddings with JPEGs decoded at a reduced scale in ``scaled_jpeg_decode``."""
    graphs = dict(graphs)
    sessions = GraphSessions()
    reference = graphs["fp32"]
    sessions.preload(reference)
    figures: dict[str, Any] = {"batches": check_batches({"fp32": reference}, options.batch_sizes, sessions)}
    figures["text_padding"] = verify_longest_padding(
        reference, context.preprocess, context.processor_dir, sessions=sessions
    )
    preprocess = _padded(context.preprocess, figures["text_padding"])
    probe = AccuracyProbe(reference, preprocess, context.processor_dir, context.scoring, sessions)
    scaled_decode = measure_scaled_decode(reference, preprocess.image, sessions)
    if scaled_decode is not None:
        figures["scaled_jpeg_decode"] = scaled_decode
    figures["accuracy"], figures["dropped"] = {}, {}
    timing: dict[str, Any] = {}
    for key in list(graphs):
        reason = _check_variant(key, graphs[key], options, probe, sessions, figures)
        if reason is not None:
            figures["dropped"][key] = reason
            sessions.release(graphs.pop(key))
            continue
        if key in options.timed:
            timing[key] = time_variant(graphs[key], options.timing_batch, options.timing_runs, sessions)
        if key != "fp32":
            sessions.release(graphs[key])
    if timing:
        figures["timing"], figures["head_to_head"] = timing, []
        rematch = _rematch(options, sessions, reference, figures["head_to_head"])
        figures["chosen"] = choose_fastest(graphs, timing, figures["accuracy"], rematch)
    return figures
