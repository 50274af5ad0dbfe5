"""Comparisons of embeddings: row cosines, and the figures the reports carry."""

from __future__ import annotations

import numpy as np


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of two [N, D] arrays (float64)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(denom, 1e-30)


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """max abs diff, min and mean row cosine of ``candidate`` against ``reference``."""
    cos = row_cosines(reference, candidate)
    return {
        "max_abs_diff": float(np.max(np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64)))),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
    }
