"""The training objective: cross-entropy for one label per example, BCE for several."""

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def classification_loss(
    multilabel: bool,
    class_weights: list[float] | None = None,
    label_smoothing: float = 0.0,
    device: torch.device | str = "cpu",
) -> LossFn:
    """loss(logits, targets); logits are promoted to fp32 so bf16 autocast never reaches it."""
    if multilabel:
        return lambda logits, targets: F.binary_cross_entropy_with_logits(logits.float(), targets)
    weight = None if class_weights is None else torch.tensor(class_weights, device=device)
    return lambda logits, targets: F.cross_entropy(
        logits.float(), targets, weight=weight, label_smoothing=label_smoothing
    )


def validation_loss(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> float:
    """Plain NLL (no weights, no smoothing), so losses compare across methods and runs."""
    return float(classification_loss(multilabel)(logits, targets))
