"""Serving a classifier: temperature-calibrated probabilities, top-k lists, label decisions."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.tasks.base import PredictOptions, ServingHead
from ml.tasks.classification.outputs import (
    calibrated_probabilities,
    format_predictions,
    resolve_thresholds,
)


class ClassificationHead(ServingHead):
    """From config.json's ``labels``, ``multilabel``, ``temperature`` and ``thresholds``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.names: list[str] = list(config["labels"])
        self.multilabel = bool(config.get("multilabel", False))
        self.temperature = float(config.get("temperature") or 1.0)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self.thresholds = (
            resolve_thresholds(config.get("thresholds"), self.names) if self.multilabel else None
        )

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        return calibrated_probabilities(raw, self.temperature, self.multilabel)

    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict[str, Any]]:
        return format_predictions(values, self.names, options.top_k, self.thresholds)

    def check(self, options: PredictOptions) -> None:
        """Any top_k is answerable: format clamps it to the number of labels."""

    def decisions(self, values: np.ndarray) -> np.ndarray:
        """What a client acts on: the top label, or the set of labels over their thresholds."""
        if self.thresholds is not None:
            return values >= self.thresholds
        return values.argmax(axis=1)

    def compare(self, values: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        same = self.decisions(values) == self.decisions(reference)
        agreement = same.all(axis=1) if same.ndim == 2 else same
        return {
            "agreement": float(agreement.mean()),
            "max_abs_diff": float(np.abs(values - reference).max()),
        }

    def accuracy(self, values: np.ndarray, truth: Sequence[Any] | None) -> float | None:
        """Single-label only: a multi-label model is judged by agreement with torch."""
        if truth is None or self.multilabel:
            return None
        return float((self.decisions(values) == np.asarray(truth)).mean())
