"""Validate stage (plugin ``validate``): every graph runs at the batch sizes that matter,
each precision's accuracy against fp32 is measured on the probe set of real photos and
captions, and padding texts to the batch's longest is verified before it is recorded.

A precision whose accuracy loss (1 - mean cosine to fp32 of its worst output) exceeds
``options.max_accuracy_loss`` stops the build with the figures and the ways out.
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


def enforce_budget(accuracy: dict[str, Any], limit: float) -> None:
    """Raise :class:`BuildError` for the first precision over the accuracy budget."""
    for precision, figures in accuracy.items():
        loss = figures.get("accuracy_loss", 0.0)
        if precision != "fp32" and loss > limit:
            raise BuildError(
                f"{precision} loses {loss:.2%} accuracy against fp32 (mean embedding cosine "
                f"{figures.get('mean_cosine', 0):.5f}); the limit is {limit:.2%}",
                hint=f"drop --precision {precision}, try --int8-mode static or --per-channel, "
                "or raise --max-accuracy-loss",
            )


@hookimpl(trylast=True)
def mmship_validate(
    graphs: dict[str, list[ExportedGraph]], context: BuildContext, options: ValidateOptions
) -> dict[str, Any]:
    """Batch checks, padding verification and the accuracy report, budget enforced."""
    figures: dict[str, Any] = {"batches": check_batches(graphs, batch_sizes=options.batch_sizes)}
    figures["text_padding"] = verify_longest_padding(graphs["fp32"], context.preprocess, context.processor_dir)
    preprocess = context.preprocess
    padding = figures["text_padding"].get("padding")
    if preprocess.text is not None and padding and padding != preprocess.text.padding:
        preprocess = preprocess.model_copy(update={"text": preprocess.text.model_copy(update={"padding": padding})})
    figures["accuracy"] = accuracy_report(graphs, preprocess, context.processor_dir, context.scoring)
    enforce_budget(figures["accuracy"], options.max_accuracy_loss)
    return figures
