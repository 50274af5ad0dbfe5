"""Comparisons of embeddings: row cosines, and the figures the reports carry."""

from __future__ import annotations

import numpy as np

from mmship.scoring import row_cosines


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """max abs diff, min and mean row cosine of ``candidate`` against ``reference``."""
    cos = row_cosines(reference, candidate)
    return {
        "max_abs_diff": float(np.max(np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64)))),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
    }
