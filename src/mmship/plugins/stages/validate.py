"""Validate stage (plugin ``validate``): every graph runs at the batch sizes that matter,
each precision's accuracy against fp32 is measured on the probe set of real photos and
captions, and padding texts to the batch's longest is verified before it is recorded.

A precision whose accuracy loss (1 - mean cosine to fp32 of its worst output) exceeds
``options.max_accuracy_loss`` stops the build with the figures and the ways out; an
optional variant (``options.optional``: e.g. OpenVINO's, built by default) is left out
instead, with the reason. The variants that passed are then timed (``options.timed``) and
the fastest per tower is chosen.
"""

from __future__ import annotations

from typing import Any

from mmship import hookimpl
from mmship.core.errors import BuildError
from mmship.core.specs import ExportedGraph
from mmship.core.stages import BuildContext, ValidateOptions
from mmship.evaluation.accuracy import (
    accuracy_report,
    check_batches,
    verify_longest_padding,
)
from mmship.evaluation.variants import choose_fastest, time_variants


def over_budget(key: str, figures: dict[str, Any], limit: float) -> str | None:
    """Why the variant ``key`` fails the accuracy budget, or ``None`` when it meets it."""
    loss = figures.get("accuracy_loss", 0.0)
    if key == "fp32" or loss <= limit:
        return None
    return (f"{key} loses {loss:.2%} accuracy against fp32 (mean embedding cosine "
            f"{figures.get('mean_cosine', 0):.5f}); the limit is {limit:.2%}")


def enforce_budget(accuracy: dict[str, Any], limit: float, optional: tuple[str, ...] = ()) -> dict[str, str]:
    """Raise :class:`BuildError` for the first required variant over the accuracy budget;
    returns ``{key: reason}`` for the optional ones over it (left out of the bundle)."""
    dropped: dict[str, str] = {}
    for key, figures in accuracy.items():
        reason = over_budget(key, figures, limit)
        if reason is None:
            continue
        if key in optional:
            dropped[key] = reason
            continue
        raise BuildError(
            reason,
            hint=f"drop --precision {key.rsplit('-', 1)[-1]}, try --int8-mode static or --per-channel, "
            "or raise --max-accuracy-loss",
        )
    return dropped


def _runnable(
    graphs: dict[str, list[ExportedGraph]], options: ValidateOptions, dropped: dict[str, str]
) -> dict[str, Any]:
    """Batch checks per variant; an optional variant that fails them is dropped."""
    batches: dict[str, Any] = {}
    for key in list(graphs):
        try:
            batches.update(check_batches({key: graphs[key]}, batch_sizes=options.batch_sizes))
        except BuildError as exc:
            if key not in options.optional:
                raise
            dropped[key] = exc.message
            del graphs[key]
    return batches


@hookimpl(trylast=True)
def mmship_validate(
    graphs: dict[str, list[ExportedGraph]], context: BuildContext, options: ValidateOptions
) -> dict[str, Any]:
    """Batch checks, padding verification and the accuracy report, budget enforced; then
    the variants in ``options.timed`` that passed are timed and the fastest per tower is
    chosen (``chosen``). Optional variants that fail a check are listed in ``dropped``."""
    graphs = dict(graphs)
    dropped: dict[str, str] = {}
    figures: dict[str, Any] = {"batches": _runnable(graphs, options, dropped)}
    figures["text_padding"] = verify_longest_padding(graphs["fp32"], context.preprocess, context.processor_dir)
    preprocess = context.preprocess
    padding = figures["text_padding"].get("padding")
    if preprocess.text is not None and padding and padding != preprocess.text.padding:
        preprocess = preprocess.model_copy(update={"text": preprocess.text.model_copy(update={"padding": padding})})
    figures["accuracy"] = accuracy_report(graphs, preprocess, context.processor_dir, context.scoring)
    for key, reason in enforce_budget(figures["accuracy"], options.max_accuracy_loss, options.optional).items():
        dropped[key] = reason
        graphs.pop(key, None)
    figures["dropped"] = dropped
    timed = tuple(k for k in options.timed if k in graphs)
    if timed:
        figures["timing"] = time_variants(graphs, timed, options.timing_batch, options.timing_runs)
        figures["chosen"] = choose_fastest(graphs, figures["timing"], figures["accuracy"])
    return figures
