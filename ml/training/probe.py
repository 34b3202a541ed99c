"""Linear probe: a logistic-regression head fitted on frozen features, full batch, with LBFGS.

FINDINGS.md: on small datasets this beats a full fine-tune and takes seconds. The L2 strength
is chosen on validation (what tuning C by cross-validation did there), fitting from strong to
weak regularisation with warm starts. Features are standardised for the optimiser's sake, and
the scaling is folded back into the weights, so the head drops into the model's own classifier
layer and serving needs nothing special.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ml.training.evaluation import Score
from ml.training.loss import classification_loss
from ml.training.model import classifier_layer

# Candidate L2 strengths (on the mean loss), strongest first.
L2_GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
# Stop walking the grid after this many strengths in a row without a better validation score.
_GRID_PATIENCE = 2
_MAX_ITER = 500


@dataclass
class ProbeFit:
    weight: torch.Tensor  # [K, D], on the original (unstandardised) features
    bias: torch.Tensor  # [K]
    l2: float
    val_logits: torch.Tensor
    score: Score


def _fit(
    x: torch.Tensor,
    y: torch.Tensor,
    start: tuple[torch.Tensor, torch.Tensor],
    l2: float,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    weight = start[0].clone().requires_grad_(True)
    bias = start[1].clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        max_iter=_MAX_ITER,
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(torch.addmm(bias, x, weight.T), y) + 0.5 * l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def fit_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    *,
    num_labels: int,
    multilabel: bool,
    class_weights: list[float] | None,
    score: Callable[[torch.Tensor, torch.Tensor], Score],
) -> ProbeFit:
    """The best head on validation (by `score`, higher is better) over the L2 grid."""
    mean = train_x.mean(dim=0)
    std = train_x.std(dim=0, unbiased=False).clamp_min(1e-6)
    x = (train_x - mean) / std
    vx = (val_x - mean) / std
    loss_fn = classification_loss(multilabel, class_weights, device=x.device)
    start = (x.new_zeros(num_labels, x.shape[1]), x.new_zeros(num_labels))
    best: ProbeFit | None = None
    misses = 0
    for l2 in L2_GRID:
        start = _fit(x, train_y, start, l2, loss_fn)
        weight, bias = start
        val_logits = torch.addmm(bias, vx, weight.T)
        fit_score = score(val_logits, val_y)
        if best is None or fit_score > best.score:
            # Fold the standardisation in: W (x - m) / s + b = (W / s) x + (b - W m / s).
            folded = weight / std
            best = ProbeFit(folded, bias - folded @ mean, l2, val_logits, fit_score)
            misses = 0
        else:
            misses += 1
            if misses >= _GRID_PATIENCE:
                break
    assert best is not None
    return best


def install_head(model: torch.nn.Module, fit: ProbeFit) -> None:
    """Copy the probe's weights into the model's classifier layer."""
    layer = classifier_layer(model)
    with torch.no_grad():
        layer.weight.copy_(fit.weight.to(layer.weight))
        layer.bias.copy_(fit.bias.to(layer.bias))
