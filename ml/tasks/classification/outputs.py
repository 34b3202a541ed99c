"""From logits to the answers the API returns: calibrated probabilities and top-k lists."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5


def calibrated_probabilities(
    logits: np.ndarray, temperature: float, multilabel: bool
) -> np.ndarray:
    """softmax(logits / T), or an independent sigmoid per label for multi-label models."""
    scaled = logits.astype(np.float64) / temperature
    if multilabel:
        # Written as exp(-logaddexp(0, -x)) so large negative logits do not overflow exp.
        return np.exp(-np.logaddexp(0.0, -scaled))
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def resolve_thresholds(thresholds: Any, labels: Sequence[str]) -> np.ndarray:
    """Per-label decision thresholds from config.json: null, one number, a list or a mapping."""
    if thresholds is None:
        return np.full(len(labels), DEFAULT_THRESHOLD)
    if isinstance(thresholds, int | float):
        return np.full(len(labels), float(thresholds))
    if isinstance(thresholds, Mapping):
        return np.array([float(thresholds.get(label, DEFAULT_THRESHOLD)) for label in labels])
    values = np.asarray(thresholds, dtype=np.float64)
    if values.shape != (len(labels),):
        raise ValueError(f"{len(values)} thresholds for {len(labels)} labels")
    return values


def format_predictions(
    probs: np.ndarray,
    labels: Sequence[str],
    top_k: int,
    thresholds: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One contract-shaped prediction per row of ``probs``.

    Single-label: ``{"label", "score", "scores": top_k}``; multi-label (``thresholds`` given):
    ``{"labels": every label at or over its threshold, best first, "scores": top_k}``.
    """
    k = max(1, min(top_k, len(labels)))
    predictions: list[dict[str, Any]] = []
    for row in probs:
        # A stable sort keeps label order for ties, so equal scores answer deterministically.
        order = np.argsort(-row, kind="stable")
        scores = [{"label": labels[i], "score": float(row[i])} for i in order[:k]]
        if thresholds is None:
            best = order[0]
            predictions.append({"label": labels[best], "score": float(row[best]), "scores": scores})
        else:
            chosen = [labels[i] for i in order if row[i] >= thresholds[i]]
            predictions.append({"labels": chosen, "scores": scores})
    return predictions
