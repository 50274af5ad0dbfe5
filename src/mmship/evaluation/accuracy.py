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
from mmship.evaluation.sessions import GraphSessions, session_for
from mmship.scoring import Scorer


def check_batches(
    graphs: dict[str, list[ExportedGraph]], batch_sizes: tuple[int, ...] = (1, 32), sessions: GraphSessions | None = None
) -> dict[str, Any]:
    """Run every graph at each batch size; fail naming the graph when one does not run."""
    figures: dict[str, Any] = {}
    for precision, items in graphs.items():
        for graph in items:
            session = session_for(graph, sessions)
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
    graphs: list[ExportedGraph], preprocess: PreprocessSpec, processor_dir: Path, min_cosine: float = 0.99999,
    sessions: GraphSessions | None = None,
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
        session = session_for(graph, sessions)
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


class AccuracyProbe:
    """The probe set's fp32 embeddings, computed once, against which each variant is measured."""

    def __init__(
        self, reference: list[ExportedGraph], preprocess: PreprocessSpec, processor_dir: Path,
        scoring: ScoringSpec | None = None, sessions: GraphSessions | None = None,
    ) -> None:
        self.preprocess, self.processor_dir, self.sessions = preprocess, processor_dir, sessions
        self.scorer = Scorer(scoring)
        #: The probe feeds of each tower's inputs, prepared once: every variant of a tower
        #: takes the same inputs (decoding the photos and loading the tokenizer ~0.45 s).
        self._feeds: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
        self.reference = self.embeddings(reference)
        self.reference_top1 = self.scorer.top1(self.reference)

    def feeds(self, graph: ExportedGraph) -> dict[str, np.ndarray]:
        """The probe set as ``graph``'s feeds."""
        key = tuple(f"{s.name}:{s.modality}" for s in graph.inputs)
        if key not in self._feeds:
            self._feeds[key] = probe_feeds(graph.inputs, self.preprocess, self.processor_dir)
        return self._feeds[key]

    def embeddings(self, graphs: list[ExportedGraph]) -> dict[str, np.ndarray]:
        """Every output of ``graphs`` on the probe set."""
        out: dict[str, np.ndarray] = {}
        for graph in graphs:
            out.update(session_for(graph, self.sessions).run(self.feeds(graph)))
        return out

    def figures(self, graphs: list[ExportedGraph] | None) -> dict[str, Any]:
        """Cosine against fp32 per output, accuracy loss and, for a model with an image-text
        score, how often the zero-shot top-1 label agrees with fp32's (``None``: fp32 itself)."""
        embeds = self.reference if graphs is None else self.embeddings(graphs)
        outputs = {name: compare(self.reference[name], embeds[name]) for name in self.reference}
        figures: dict[str, Any] = {
            "probe_items": int(len(next(iter(self.reference.values())))),
            "outputs": outputs,
            "min_cosine": min(v["min_cosine"] for v in outputs.values()),
            "mean_cosine": min(v["mean_cosine"] for v in outputs.values()),
        }
        figures["accuracy_loss"] = max(0.0, 1.0 - figures["mean_cosine"])
        top1 = self.scorer.top1(embeds)
        if top1 is not None and self.reference_top1 is not None:
            figures["zero_shot_top1_agreement"] = float(np.mean(top1 == self.reference_top1))
            figures["zero_shot_top1_correct"] = float(np.mean(top1 == np.arange(len(top1))))
        return figures
