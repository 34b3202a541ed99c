"""Linear probe: a logistic-regression head fitted on frozen features, full batch, with LBFGS.

docs/measurements.md: on small datasets this beats a full fine-tune and takes seconds. The L2
strength is chosen on validation (what tuning C by cross-validation did there), fitting from
strong to weak regularisation with warm starts. The head drops into the model's own classifier
layer, so serving needs nothing special.

Features are centred (folded back into the bias) but deliberately not rescaled per dimension:
rescaling would turn near-constant features into huge weights, and fine-tuning starting from
this head (LP-FT) moves those features far beyond their old spread, blowing up the logits.
On raw features the L2 penalty itself keeps such weights small.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ml.device import torch_threads
from ml.training.evaluation import Score
from ml.training.loss import classification_loss
from ml.training.model import classifier_layer

# Candidate L2 strengths (on the mean loss), strongest first.
L2_GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
# Stop walking the grid after this many strengths in a row without a better validation score.
_GRID_PATIENCE = 2
_MAX_ITER = 500
# Below this many feature values the probe's operations are too small to share between threads.
_SINGLE_THREAD_ELEMENTS = 1 << 21


@dataclass
class ProbeFit:
    weight: torch.Tensor  # [K, D], on the original (uncentred) features
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
    x = train_x - mean
    vx = val_x - mean
    loss_fn = classification_loss(multilabel, class_weights, device=x.device)
    small = x.device.type == "cpu" and x.numel() < _SINGLE_THREAD_ELEMENTS
    with torch_threads(1) if small else contextlib.nullcontext():
        start = (x.new_zeros(num_labels, x.shape[1]), x.new_zeros(num_labels))
        return _walk_grid(start, x, train_y, vx, val_y, mean, loss_fn, score)


def _walk_grid(
    start: tuple[torch.Tensor, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    vx: torch.Tensor,
    val_y: torch.Tensor,
    mean: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    score: Callable[[torch.Tensor, torch.Tensor], Score],
) -> ProbeFit:
    """Fit from the strongest L2 to the weakest, each warm-started from the last."""
    best: ProbeFit | None = None
    misses = 0
    for l2 in L2_GRID:
        start = _fit(x, y, start, l2, loss_fn)
        weight, bias = start
        val_logits = torch.addmm(bias, vx, weight.T)
        fit_score = score(val_logits, val_y)
        if best is None or fit_score > best.score:
            # Fold the centring in: W (x - m) + b = W x + (b - W m).
            best = ProbeFit(weight, bias - weight @ mean, l2, val_logits, fit_score)
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
