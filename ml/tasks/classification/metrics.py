"""Classification metrics on a validation split, and per-label thresholds for multi-label models.

Plain numpy over a confusion matrix: it runs after every epoch, so it stays cheap. Averages
follow scikit-learn's conventions (macro over the labels that occur in truth or prediction).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall and F1 per label; 0 where a ratio has no denominator, like sklearn."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return precision, recall, f1


def _per_label(
    labels: Sequence[str],
    precision: np.ndarray,
    recall: np.ndarray,
    f1: np.ndarray,
    support: np.ndarray,
) -> dict[str, dict[str, float]]:
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }


def single_label_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """y_true, y_pred: label indices. Confusion matrix rows are true labels, columns predicted."""
    k = len(labels)
    matrix = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision, recall, f1 = _f1(tp, predicted - tp, support - tp)
    present = (support + predicted) > 0
    return {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_label": _per_label(labels, precision, recall, f1, support),
        "confusion_matrix": matrix.tolist(),
    }


def multilabel_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """y_true, y_pred: boolean (examples, labels). "accuracy" is the exact-match (subset) rate."""
    y_true = y_true.astype(bool)
    y_pred = y_pred.astype(bool)
    tp = (y_true & y_pred).sum(axis=0).astype(np.float64)
    fp = (~y_true & y_pred).sum(axis=0).astype(np.float64)
    fn = (y_true & ~y_pred).sum(axis=0).astype(np.float64)
    precision, recall, f1 = _f1(tp, fp, fn)
    support = y_true.sum(axis=0)
    present = (support + y_pred.sum(axis=0)) > 0
    _, _, micro = _f1(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))
    subset = float((y_true == y_pred).all(axis=1).mean()) if len(y_true) else 0.0
    return {
        "accuracy": subset,
        "subset_accuracy": subset,
        "hamming_accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "micro_f1": float(micro[0]),
        "per_label": _per_label(labels, precision, recall, f1, support),
    }


def best_thresholds(y_true: np.ndarray, probs: np.ndarray, default: float = 0.5) -> list[float]:
    """Per label, the probability cut that maximises F1 on these examples (predict prob >= cut).

    Cuts fall midway between neighbouring distinct probabilities so that they generalise a
    little beyond the exact validation scores. Labels with no positive example keep `default`.
    """
    thresholds = []
    for j in range(probs.shape[1]):
        truth = y_true[:, j].astype(bool)
        positives = int(truth.sum())
        if positives == 0:
            thresholds.append(default)
            continue
        order = np.argsort(-probs[:, j], kind="stable")
        ranked = probs[order, j]
        true_positives = np.cumsum(truth[order])
        predicted = np.arange(1, len(ranked) + 1)
        f1 = 2 * true_positives / (predicted + positives)
        # Only cut where the next probability is strictly lower: ties must fall on one side.
        f1[:-1][ranked[:-1] <= ranked[1:]] = -1.0
        k = int(np.argmax(f1))
        below = ranked[k + 1] if k + 1 < len(ranked) else 0.0
        thresholds.append(float((ranked[k] + below) / 2))
    return thresholds
