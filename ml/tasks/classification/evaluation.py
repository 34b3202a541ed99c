"""Classification validation: the per-epoch summary and score, and the final report."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ml.tasks.classification.calibration import (
    choose_temperature,
    diagram_ece,
    ece_bins,
    probabilities,
    reliability,
)
from ml.tasks.classification.loss import validation_loss
from ml.tasks.classification.metrics import (
    best_thresholds,
    multilabel_metrics,
    single_label_metrics,
)

Score = tuple[float, ...]


def _decide(
    logits: torch.Tensor, targets: torch.Tensor, multilabel: bool, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray, list[float] | None]:
    """(truth, prediction, thresholds): argmax, or per-label F1-optimal cuts on probabilities."""
    if not multilabel:
        return targets.numpy(), logits.argmax(dim=1).numpy(), None
    truth = targets.numpy() > 0.5
    probs = probabilities(logits, temperature, multilabel=True).numpy()
    thresholds = best_thresholds(truth, probs)
    return truth, probs >= np.asarray(thresholds), thresholds


def _metrics(truth: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    if truth.ndim == 2:
        return multilabel_metrics(truth, pred, labels)
    return single_label_metrics(truth, pred, labels)


def summarize(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> dict[str, float]:
    """What every epoch reports: val_loss, val_accuracy, val_macro_f1."""
    truth, pred, _ = _decide(logits, targets, multilabel)
    labels = [str(i) for i in range(logits.shape[1])]
    metrics = _metrics(truth, pred, labels)
    return {
        "val_loss": validation_loss(logits, targets, multilabel),
        "val_accuracy": metrics["accuracy"],
        "val_macro_f1": metrics["macro_f1"],
    }


def score_of(summary: dict[str, float]) -> Score:
    """Model selection: macro-F1 first (the product's headline), lower loss breaks ties."""
    return (summary["val_macro_f1"], -summary["val_loss"])


def score(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> Score:
    return score_of(summarize(logits, targets, multilabel))


def final_report(
    logits: torch.Tensor, targets: torch.Tensor, labels: Sequence[str], multilabel: bool
) -> tuple[dict[str, Any], float, list[float] | None]:
    """(metrics, temperature, thresholds) of the kept model from its held-out logits.

    The temperature is cross-validated first (served only where it lowers held-out NLL);
    multi-label thresholds are then chosen on the calibrated probabilities, which is what
    serving compares them with. The reliability diagram before and after is for the dashboard.
    """
    choice = choose_temperature(logits, targets, multilabel=multilabel)
    temperature = choice.temperature
    truth, pred, thresholds = _decide(logits, targets, multilabel, temperature)
    metrics = _metrics(truth, pred, labels)
    metrics["val_loss"] = validation_loss(logits, targets, multilabel)
    before = reliability(probabilities(logits, 1.0, multilabel), targets, multilabel=multilabel)
    after = reliability(
        probabilities(logits, temperature, multilabel), targets, multilabel=multilabel
    )
    metrics["calibration"] = {
        "temperature": temperature,
        "applied": choice.applied,
        "fitted_temperature": choice.fitted,
        "folds": choice.folds,
        "nll_before": choice.nll_before,
        "nll_after": choice.nll_after,
        "nll_scaled": choice.nll_scaled,
        "ece_before": diagram_ece(before),
        "ece_after": diagram_ece(after),
        "bins": ece_bins(logits.numel() if multilabel else len(logits)),
    }
    metrics["reliability"] = {"before": before, "after": after}
    return metrics, temperature, thresholds
