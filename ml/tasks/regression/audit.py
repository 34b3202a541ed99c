"""The regression audit's numbers: per-target statistics, a histogram and robust outliers."""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# |x - median| / (MAD_SCALE * MAD) above this is an outlier. MAD_SCALE makes the median
# absolute deviation of normal data its standard deviation, so 5 means "five sigmas", which
# normal data almost never reaches while typos and unit mistakes do.
OUTLIER_Z = 5.0
MAD_SCALE = 1.4826
# When more than half the values are equal MAD is 0; the mean absolute deviation, scaled the
# same way (sqrt(pi/2)), still measures the spread of the rest.
MEAN_AD_SCALE = math.sqrt(math.pi / 2)
MAX_BINS = 50
MAX_OUTLIERS_LISTED = 20


def histogram_bins(n: int) -> int:
    """Sturges' rule, ceil(log2 n) + 1: enough bars to show the shape, at most MAX_BINS."""
    return max(1, min(MAX_BINS, math.ceil(math.log2(max(n, 1))) + 1))


def histogram(values: np.ndarray) -> dict[str, list[Any]]:
    counts, edges = np.histogram(values, bins=histogram_bins(len(values)))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def robust_z(values: np.ndarray) -> np.ndarray:
    """Each value's distance from the median in robust standard deviations (0 for all when
    the values do not vary)."""
    deviation = np.abs(values - np.median(values))
    scale = MAD_SCALE * float(np.median(deviation))
    if scale == 0.0:
        scale = MEAN_AD_SCALE * float(np.mean(deviation))
    if scale == 0.0:
        return np.zeros_like(values)
    return deviation / scale


def outliers(values: np.ndarray, sources: Sequence[str]) -> dict[str, Any]:
    """The values beyond OUTLIER_Z, the farthest first: counted, and the first few listed."""
    z = robust_z(values)
    flagged = np.flatnonzero(z > OUTLIER_Z)
    farthest = flagged[np.argsort(-z[flagged], kind="stable")][:MAX_OUTLIERS_LISTED]
    return {
        "count": len(flagged),
        "threshold": OUTLIER_Z,
        "listed": [
            {"source": sources[i], "value": float(values[i]), "robust_z": float(z[i])}
            for i in farthest
        ],
    }


def target_stats(values: np.ndarray, sources: Sequence[str]) -> dict[str, Any]:
    """count, min, max, mean, std (population, ddof 0), median, distinct values, histogram
    and outliers of one target's values."""
    return {
        "count": len(values),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "median": float(np.median(values)),
        "distinct": len(np.unique(values)),
        "histogram": histogram(values),
        "outliers": outliers(values, sources),
    }
