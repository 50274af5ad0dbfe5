"""Validation of built graphs: batch sizes that run, and accuracy of each precision.

The probe set is a handful of real photos (scikit-image sample data, shipped with
mmship) with label prompts. For every precision the graphs run on the probe inputs,
prepared by mmship's own aligned preprocessing; the report gives min/mean cosine of the
embeddings against fp32 and, for models with an image-text score (the bundle's
``scoring``), how often the zero-shot top-1 label agrees with fp32's. ``accuracy_loss`` is ``1 - mean cosine`` of the
worst output: the figure ``--max-accuracy-loss`` is checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmship.core.errors import BuildError
from mmship.core.specs import ExportedGraph, PreprocessSpec, ScoringSpec
from mmship.evaluation.compare import compare
from mmship.evaluation.feeds import example_feeds, load_probe_set, probe_feeds
from mmship.evaluation.sessions import load_graph
from mmship.scoring import Scorer


def check_batches(graphs: dict[str, list[ExportedGraph]], batch_sizes: tuple[int, ...] = (1, 32)) -> dict[str, Any]:
    """Run every graph at each batch size; fail naming the graph when one does not run."""
    figures: dict[str, Any] = {}
    for precision, items in graphs.items():
        for graph in items:
            session = load_graph(graph)
            shapes = {}
            for batch in batch_sizes:
                try:
                    outputs = session.run(example_feeds(graph.inputs, batch=batch))
                except Exception as exc:
                    raise BuildError(
                        f"graph {graph.name} ({precision}) fails at batch {batch}: {exc}",
                        hint="the batch axis was fixed during export; check the adapter's specs",
                    ) from exc
                bad = [n for n, v in outputs.items() if v.shape[0] != batch or not np.isfinite(v).all()]
                if bad:
                    raise BuildError(
                        f"graph {graph.name} ({precision}) gives wrong or non-finite {bad} at batch {batch}",
                        hint="rebuild without this precision",
                    )
                shapes[f"batch{batch}"] = {n: list(v.shape) for n, v in outputs.items()}
            figures[f"{graph.name}.{precision}"] = shapes
    return figures


def verify_longest_padding(
    graphs: list[ExportedGraph], preprocess: PreprocessSpec, processor_dir: Path, min_cosine: float = 0.99999
) -> dict[str, Any]:
    """Compare text-graph outputs for texts padded to their longest vs to ``max_length``.

    Padding to the batch's longest text is what makes short texts cheap; it is kept only
    when the outputs agree (``min_cosine``). Returns the figures and the padding to use.
    """
    from mmship.preprocess.tokens import TextTokenizer

    if preprocess.text is None or preprocess.text.padding != "longest":
        return {"padding": preprocess.text.padding if preprocess.text else None, "verified": False}
    _, labels, template = load_probe_set()
    texts = [template.format(label) for label in labels] + ["a"]  # all shorter than max_length
    longest = TextTokenizer(processor_dir, preprocess.text).tokenize(texts)
    full_spec = preprocess.text.model_copy(update={"padding": "max_length"})
    full = TextTokenizer(processor_dir, full_spec).tokenize(texts)
    worst = 1.0
    for graph in graphs:
        names = [s.name for s in graph.inputs]
        if not names or any(s.modality != "text" for s in graph.inputs):
            continue
        session = load_graph(graph)
        short_out = session.run({n: longest[n] for n in names})
        full_out = session.run({n: full[n] for n in names})
        for name in short_out:
            worst = min(worst, compare(full_out[name], short_out[name])["min_cosine"])
    keep = worst >= min_cosine
    return {
        "padding": "longest" if keep else "max_length",
        "verified": True,
        "min_cosine_longest_vs_max_length": worst,
        "tokens_longest": int(longest["input_ids"].shape[1]),
        "tokens_max_length": int(full["input_ids"].shape[1]),
    }


def _embeddings(graphs: list[ExportedGraph], preprocess: PreprocessSpec, processor_dir: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for graph in graphs:
        out.update(load_graph(graph).run(probe_feeds(graph.inputs, preprocess, processor_dir)))
    return out


def accuracy_report(
    graphs: dict[str, list[ExportedGraph]], preprocess: PreprocessSpec, processor_dir: Path,
    scoring: ScoringSpec | None = None,
) -> dict[str, Any]:
    """Per precision: cosine against fp32 per output, accuracy loss and, for a model with
    an image-text score (``scoring``), how often its zero-shot top-1 label agrees with fp32's."""
    scorer = Scorer(scoring)
    reference = _embeddings(graphs["fp32"], preprocess, processor_dir)
    reference_top1 = scorer.top1(reference)
    report: dict[str, Any] = {}
    for precision, items in graphs.items():
        embeds = reference if precision == "fp32" else _embeddings(items, preprocess, processor_dir)
        outputs = {name: compare(reference[name], embeds[name]) for name in reference}
        figures: dict[str, Any] = {
            "probe_items": int(len(next(iter(reference.values())))),
            "outputs": outputs,
            "min_cosine": min(v["min_cosine"] for v in outputs.values()),
            "mean_cosine": min(v["mean_cosine"] for v in outputs.values()),
        }
        figures["accuracy_loss"] = max(0.0, 1.0 - figures["mean_cosine"])
        top1 = scorer.top1(embeds)
        if top1 is not None and reference_top1 is not None:
            figures["zero_shot_top1_agreement"] = float(np.mean(top1 == reference_top1))
            figures["zero_shot_top1_correct"] = float(np.mean(top1 == np.arange(len(top1))))
        report[precision] = figures
    return report
