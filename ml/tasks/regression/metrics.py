"""Regression metrics per target, in plain numpy (they run after every epoch).

Conventions follow scikit-learn's where it has them: R² is ``r2_score``'s with
``force_finite=True`` (a constant truth scores 1.0 when predicted exactly, else 0.0, never
nan or -inf). Spearman's rho is Pearson's correlation of average ranks (scipy's
``spearmanr``), except that it is 0.0 where scipy gives nan, when either side is constant: a
constant prediction orders nothing, and the metrics must stay JSON numbers.
"""

import math
from typing import Any

import numpy as np

# Enough bars to show a residual distribution's shape, few enough to read.
MAX_HISTOGRAM_BINS = 50


def _pair(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.ndim == 1:
        p, t = p[:, None], t[:, None]
    if p.shape != t.shape or p.ndim != 2 or len(p) == 0:
        raise ValueError(f"predictions {p.shape} and truth {t.shape} must both be [n >= 1, T]")
    return p, t


def mae(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    p, t = _pair(predicted, truth)
    return np.abs(p - t).mean(axis=0)


def rmse(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    p, t = _pair(predicted, truth)
    return np.sqrt(np.square(p - t).mean(axis=0))


def r2(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    p, t = _pair(predicted, truth)
    residual = np.square(t - p).sum(axis=0)
    total = np.square(t - t.mean(axis=0)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - residual / total
    return np.where(total > 0, score, np.where(residual > 0, 0.0, 1.0))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, ties sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def spearman(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    p, t = _pair(predicted, truth)
    return np.array(
        [_pearson(average_ranks(p[:, j]), average_ranks(t[:, j])) for j in range(p.shape[1])]
    )


def per_target(predicted: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """mae, rmse, r2 and spearman, each [T], in the units of the arrays given."""
    return {
        "mae": mae(predicted, truth),
        "rmse": rmse(predicted, truth),
        "r2": r2(predicted, truth),
        "spearman": spearman(predicted, truth),
    }


def histogram_bins(values: np.ndarray) -> int:
    """numpy's "auto" rule (the larger of Sturges and Freedman-Diaconis), capped."""
    n = len(values)
    if n < 2 or np.ptp(values) == 0:
        return 1  # one bar says "all the same" better than empty ones around it
    sturges = math.ceil(math.log2(n)) + 1
    q75, q25 = np.percentile(values, [75, 25])
    width = 2.0 * float(q75 - q25) * n ** (-1 / 3)
    fd = math.ceil(float(np.ptp(values)) / width) if width > 0 else 1
    return max(1, min(MAX_HISTOGRAM_BINS, max(sturges, fd)))


def residual_histogram(residuals: np.ndarray) -> dict[str, Any]:
    """{"edges": [bins + 1], "counts": [bins]} of 1-D residuals (prediction - truth)."""
    values = np.asarray(residuals, dtype=np.float64).reshape(-1)
    counts, edges = np.histogram(values, bins=histogram_bins(values))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
