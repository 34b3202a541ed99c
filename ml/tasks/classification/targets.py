"""Label names to training targets, and the class weights that counter an imbalanced dataset."""

from collections.abc import Sequence

import numpy as np
import torch

from ml.datasets.store import Example

# Weight classes once the most frequent label outnumbers the rarest by more than this.
IMBALANCE_RATIO = 1.5


def encode_targets(
    examples: Sequence[Example], labels: Sequence[str], multilabel: bool
) -> torch.Tensor:
    """Class indices (int64, [N]) for single-label data; a 0/1 float matrix [N, K] otherwise."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = {label for example in examples for label in example.labels} - index.keys()
    if unknown:
        raise ValueError(f"labels not in the training data: {sorted(unknown)}")
    if not multilabel:
        return torch.tensor([index[example.labels[0]] for example in examples], dtype=torch.long)
    matrix = torch.zeros(len(examples), len(labels))
    for row, example in enumerate(examples):
        matrix[row, [index[label] for label in example.labels]] = 1.0
    return matrix


def label_matrix(targets: torch.Tensor, num_labels: int) -> np.ndarray:
    """Boolean [N, K] view of either target form (what splitting and counting work on)."""
    if targets.ndim == 2:
        return targets.numpy() > 0.5
    return np.eye(num_labels, dtype=bool)[targets.numpy()]


def imbalance_ratio(counts: np.ndarray) -> float:
    present = counts[counts > 0]
    return float(present.max() / present.min()) if len(present) else 1.0


def class_weights(targets: torch.Tensor, num_labels: int) -> list[float] | None:
    """Inverse-frequency weights (each label's examples weigh the same in total), or None.

    None when the labels are balanced enough, and for multi-label data, whose per-label
    thresholds (chosen on validation) already move each decision to where F1 is best.
    """
    if targets.ndim == 2:
        return None
    counts = np.bincount(targets.numpy(), minlength=num_labels).astype(np.float64)
    if imbalance_ratio(counts) <= IMBALANCE_RATIO:
        return None
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 0.0)
    return [float(w) for w in weights]
