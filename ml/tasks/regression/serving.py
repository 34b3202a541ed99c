"""Serving a regressor: values on the targets' own scale, with split-conformal intervals."""

from typing import Any

import numpy as np

from ml.tasks.base import PredictOptions, ServingHead
from ml.tasks.regression.conformal import half_widths

# Two runtimes give the same answer when every target is within this many standard
# deviations of eager torch's (float rounding is orders of magnitude below it).
SAME_ANSWER_STD = 0.01


class RegressionHead(ServingHead):
    """From config.json's ``targets``, ``target_scale`` and ``intervals``.

    The model's raw outputs are standardised targets: value = raw * std + mean. The interval
    residuals (``intervals.abs_residuals``) are in the targets' own units.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.names: list[str] = list(config["targets"])
        scale = config["target_scale"]
        self.mean = np.asarray(scale["mean"], dtype=np.float64)
        self.std = np.asarray(scale["std"], dtype=np.float64)
        count = len(self.names)
        if self.mean.shape != (count,) or self.std.shape != (count,):
            raise ValueError(f"target_scale must give a mean and a std for each of {count} targets")
        if not (self.std > 0).all():
            raise ValueError("every target's std in target_scale must be positive")
        intervals = dict(config["intervals"])
        # Converted once here: half_widths would otherwise turn the stored residual lists
        # (up to thousands per target) into an array for every request.
        intervals["abs_residuals"] = np.asarray(intervals["abs_residuals"], dtype=np.float64)
        if intervals["abs_residuals"].ndim != 2 or len(intervals["abs_residuals"]) != count:
            raise ValueError(f"intervals must hold residuals for each of {count} targets")
        if intervals.get("ranks") is not None:
            intervals["ranks"] = np.asarray(intervals["ranks"])
        self.intervals = intervals

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float64) * self.std + self.mean

    def check(self, options: PredictOptions) -> None:
        half_widths(self.intervals, options.coverage)

    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict[str, Any]]:
        q = half_widths(self.intervals, options.coverage)
        coverage = float(options.coverage)
        if len(self.names) == 1:
            return [
                {
                    "value": float(v),
                    "interval": [float(v - q[0]), float(v + q[0])],
                    "coverage": coverage,
                }
                for v in values[:, 0]
            ]
        return [
            {
                "value": [float(v) for v in row],
                "interval": [[float(v - h), float(v + h)] for v, h in zip(row, q, strict=True)],
                "coverage": coverage,
                "targets": list(self.names),
            }
            for row in values
        ]

    def compare(self, values: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        distance = np.abs(values - reference) / self.std  # in standard deviations of each target
        return {
            "agreement": float((distance <= SAME_ANSWER_STD).all(axis=1).mean()),
            "max_abs_diff": float(distance.max()),
        }
