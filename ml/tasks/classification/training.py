"""Classification's training section: label targets, weighted cross-entropy (or a BCE per
label), the cross-fitted logistic-regression probe, macro-F1 selection and calibration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ml.tasks.base import Fitted, LossFn, ProbeFit, Score
from ml.tasks.classification.evaluation import final_report, score_of, summarize
from ml.tasks.classification.loss import classification_loss
from ml.tasks.classification.targets import class_weights, encode_targets, label_matrix
from ml.training.probe import cross_fit, fold_count, stratified_folds
from ml.training.split import stratified_split

if TYPE_CHECKING:
    from ml.datasets.store import StoredDataset


def _width(targets: torch.Tensor) -> int:
    """How many labels a target tensor spans (class indices past the largest have no row)."""
    if targets.ndim == 2:
        return targets.shape[1]
    return int(targets.max()) + 1 if len(targets) else 0


def _multilabel(fitted: Fitted) -> bool:
    return bool(fitted.info["multilabel"])


class ClassificationTraining:
    """Single-label (softmax) or multi-label (a sigmoid per label), as the dataset says."""

    def names(self, dataset: StoredDataset) -> list[str]:
        return list(dataset.labels)

    def encode(self, dataset: StoredDataset, names: Sequence[str]) -> torch.Tensor:
        return encode_targets(dataset.examples, names, dataset.multilabel)

    def split(self, targets: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
        return stratified_split(label_matrix(targets, _width(targets)), fraction, seed)

    def fit_targets(self, targets: torch.Tensor, names: Sequence[str]) -> Fitted:
        weights = class_weights(targets, len(names))
        warnings = []
        if weights is not None:
            warnings.append(
                (
                    "labels are imbalanced: the loss weighs each label by its inverse frequency "
                    "unless the linear probe scores better out of fold without",
                    {"class_weights": dict(zip(names, weights, strict=True))},
                )
            )
        return Fitted(
            num_outputs=len(names),
            names=list(names),
            info={"multilabel": targets.ndim == 2},
            class_weights=weights,
            warnings=warnings,
        )

    def loss(self, fitted: Fitted, hp: dict[str, Any], device: torch.device) -> LossFn:
        return classification_loss(
            _multilabel(fitted), fitted.class_weights, hp.get("label_smoothing", 0.0), device
        )

    def probe(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        train_rows: np.ndarray,
        fitted: Fitted,
        *,
        seed: int,
        scale: bool = True,
    ) -> ProbeFit:
        """Logistic regression on frozen features, L2 chosen by stratified k-fold (macro-F1,
        then NLL, of the pooled out-of-fold logits). No label smoothing: the probe's logits
        are meant as probabilities.

        On imbalanced labels the inverse-frequency class weights are a choice too, made the
        same way: the probe is cross-fitted with and without them, and the weights stay only
        when their pooled out-of-fold score is at least as good. On the benchmark's tweets
        (444/387/169 training labels) the unweighted probe scored better on test accuracy
        and macro-F1 both (bench/RESULTS.md). ``details["class_weights"]`` says which won."""
        labels = label_matrix(targets.cpu(), fitted.num_outputs)
        folds = stratified_folds(labels, fold_count(len(targets)), seed)

        def score(logits: torch.Tensor, truth: torch.Tensor) -> Score:
            return self.score(self.summarize(logits.float().cpu(), truth.cpu(), fitted))

        def fit(weights: list[float] | None) -> ProbeFit:
            return cross_fit(
                features,
                targets,
                folds,
                train_rows,
                num_outputs=fitted.num_outputs,
                scale=scale,
                loss_fn=classification_loss(_multilabel(fitted), weights, device=features.device),
                score=score,
            )

        weighted = fit(fitted.class_weights)
        if fitted.class_weights is None:
            return weighted
        plain = fit(None)
        with_weights, without = score(weighted.oof, targets), score(plain.oof, targets)
        chosen = plain if without > with_weights else weighted
        chosen.details["class_weights"] = "none" if chosen is plain else "inverse_frequency"
        chosen.details["class_weight_scores"] = {
            "inverse_frequency": [float(x) for x in with_weights],
            "none": [float(x) for x in without],
        }
        return chosen

    def summarize(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> dict[str, float]:
        return summarize(outputs, targets, _multilabel(fitted))

    def score(self, summary: dict[str, float]) -> Score:
        return score_of(summary)

    def perfect(self, summary: dict[str, float]) -> bool:
        return summary["val_macro_f1"] >= 1.0

    def final_report(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        multilabel = _multilabel(fitted)
        metrics, temperature, thresholds = final_report(
            outputs.float().cpu(), targets.cpu(), fitted.names, multilabel
        )
        config = {
            "labels": list(fitted.names),
            "multilabel": multilabel,
            "temperature": temperature,
            "thresholds": thresholds,
        }
        return metrics, config
