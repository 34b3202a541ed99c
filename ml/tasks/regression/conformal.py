"""Split-conformal prediction intervals from held-out absolute residuals.

For exchangeable data, the interval ``prediction ± q`` with ``q`` the ⌈(n+1)·c⌉-th smallest of
n held-out absolute residuals covers a new target with probability at least c (Vovk et al.
2005; Lei et al. 2018). Residuals are kept sorted per target in the artifact config, so a
request can choose its coverage. Past ``MAX_STORED`` residuals only evenly spaced order
statistics are kept, with their ranks: a lookup then takes the nearest stored rank at or
above the one needed, which can only widen the interval.
"""

import math
from typing import Any

import numpy as np

METHOD = "split_conformal"
MAX_STORED = 4096
# Coverages recorded on the version (validation, leave-one-out); 0.9 is the default request.
REPORTED_COVERAGES = (0.8, 0.9, 0.95)


def fit_conformal(abs_residuals: np.ndarray) -> dict[str, Any]:
    """The JSON-safe ``intervals`` config from held-out |target - prediction| [n, T]."""
    residuals = np.abs(np.asarray(abs_residuals, dtype=np.float64))
    if residuals.ndim != 2 or residuals.size == 0:
        raise ValueError("conformal intervals need held-out residuals of shape [n, targets]")
    if not np.isfinite(residuals).all():
        # A nan would sort last and be stored, and the config must stay valid JSON.
        raise ValueError("held-out residuals must be finite")
    residuals = np.sort(residuals, axis=0)
    n = len(residuals)
    config: dict[str, Any] = {"method": METHOD, "n": n}
    config["validation_coverage"] = {
        f"{c:g}": leave_one_out_coverage(residuals, c)
        for c in REPORTED_COVERAGES
        if math.ceil(n * c - 1e-9) <= n - 1
    }
    if n > MAX_STORED:
        ranks = np.unique(np.linspace(0, n - 1, MAX_STORED).round().astype(int))
        config["ranks"] = [int(r) + 1 for r in ranks]  # the 1-based order statistics kept
        residuals = residuals[ranks]
    config["abs_residuals"] = residuals.T.tolist()
    return config


def max_coverage(config: dict[str, Any]) -> float:
    """The largest coverage these residuals can promise: n / (n + 1)."""
    n = int(config["n"])
    return n / (n + 1)


def _rank(n: int, coverage: float) -> int:
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be between 0 and 1 (exclusive), got {coverage}")
    # The slack keeps 0.9 * 10 from rounding up to 10.000000000000002.
    k = math.ceil((n + 1) * coverage - 1e-9)
    if k > n:
        most = math.floor(n / (n + 1) * 1000) / 1000
        raise ValueError(
            f"coverage {coverage:g} needs more held-out examples than this model was "
            f"calibrated on ({n}); ask for at most {most:g}"
        )
    return max(k, 1)


def half_widths(config: dict[str, Any], coverage: float) -> np.ndarray:
    """Per target, the half-width q of the interval at ``coverage``; ValueError if unattainable."""
    k = _rank(int(config["n"]), coverage)
    residuals = np.asarray(config["abs_residuals"], dtype=np.float64)  # [T, stored]
    ranks = config.get("ranks")
    index = k - 1 if ranks is None else int(np.searchsorted(np.asarray(ranks), k))
    return residuals[:, min(index, residuals.shape[1] - 1)]


def leave_one_out_coverage(residuals: np.ndarray, coverage: float) -> float:
    """How often a held-out residual falls inside the interval fitted on the other n - 1.

    The fit on all n covers them by construction; leaving each out in turn is the honest
    estimate of the interval's coverage on validation (averaged over targets).
    """
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)), axis=0)  # [n, T]
    n = len(r)
    k = math.ceil(n * coverage - 1e-9)  # the rank needed among n - 1 others
    if n < 2 or k > n - 1:
        return float("nan")
    k = max(k, 1)
    position = np.arange(n)[:, None]
    # Leaving out the residual at sorted position i: the k-th smallest of the rest is r[k]
    # when i is among the first k, else r[k - 1].
    quantile = np.where(position < k, r[k], r[k - 1])
    return float((r <= quantile).mean())
