"""Linear probe: a linear head fitted on frozen features, full batch, with LBFGS, cross-fitted.

docs/measurements.md: on small datasets this beats a full fine-tune and takes seconds. The L2
strength is chosen by k-fold cross-validation over every example: tuned on one 200-example
split, the probe trailed a baseline whose C was tuned by 5-fold CV (bench/RESULTS.md). Every
fold walks the grid from strong to weak regularisation with warm starts, in step, and the
strength with the best score of the pooled out-of-fold outputs wins. Those outputs are honest
validation outputs for every example (metrics, calibration); the head is then refitted on every
example (what a probe version serves) and on the training rows alone (where fine-tuning starts,
so that validation stays unseen by it). The loss and the score come from the task.

Features are centred and scaled per dimension (both folded back into the head), like the
StandardScaler a practitioner puts before a logistic regression: on the benchmark's MiniLM
features the scaled probe scored 1.3 accuracy and 1.1 macro-F1 points more on the test set
(bench/RESULTS.md). A dimension's scale is floored at a tenth of the median one: dividing by
the spread of a near-constant feature would give it a huge weight, and fine-tuning from this
head (LP-FT) moves such features far beyond their old spread, blowing up the logits (what the
unscaled probe once guarded against). Mean and scale are those of every example: they use
no targets, and with an unpenalised bias the mean moves no fit's predictions.
"""

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ml.device import torch_threads
from ml.tasks.base import LossFn, ProbeFit, Score
from ml.training.model import classifier_layer

# Candidate L2 strengths (on the mean loss of a fold's fitting rows, on scaled features),
# strongest first.
L2_GRID = (1.0, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
# A dimension's scale is at least this share of the median dimension's.
_MIN_RELATIVE_SCALE = 0.1
# Stop walking the grid after this many strengths in a row without a better pooled score.
_GRID_PATIENCE = 2
_MAX_ITER = 500
# Below this many feature values the probe's operations are too small to share between threads.
_SINGLE_THREAD_ELEMENTS = 1 << 21
MAX_FOLDS = 5

Head = tuple[torch.Tensor, torch.Tensor]  # (weight [K, D], bias [K]) on centred features
Split = tuple[np.ndarray, np.ndarray]  # (rows fitted on, rows held out)
ScoreFn = Callable[[torch.Tensor, torch.Tensor], Score]


def fold_count(num_rows: int) -> int:
    """k for k-fold: 5, or one row per fold when there are fewer.

    Not fewer for rare labels: the score pools every fold's outputs, so a fold without some
    label costs nothing, and fewer folds would only shrink every fold's fitting rows.
    """
    if num_rows < 2:
        raise ValueError("cross-fitting needs at least 2 examples")
    return min(MAX_FOLDS, num_rows)


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold (0..k-1) per row of a boolean [N, K] label matrix, each label spread evenly.

    Iterative stratification (Sechidis et al., 2011), greedy like ml.training.split: labels
    are served rarest first, and each of a label's unplaced examples goes to the fold that still
    wants most of that label (then the one that wants most examples). Multi-label examples count
    towards every label they carry; rows without any label fill the emptiest folds.
    """
    num_rows = len(labels)
    order = np.random.default_rng(seed).permutation(num_rows)
    wanted = np.tile(labels.sum(axis=0) / k, (k, 1))  # [folds, labels]
    room = np.full(k, num_rows / k)
    fold = np.full(num_rows, -1)

    def place(row: int, need: np.ndarray) -> None:
        neediest = need >= need.max() - 1e-9
        chosen = int(np.argmax(np.where(neediest, room, -np.inf)))
        fold[row] = chosen
        wanted[chosen] -= labels[row]
        room[chosen] -= 1

    for label in np.argsort(labels.sum(axis=0), kind="stable"):
        for row in order[labels[order, label]]:
            if fold[row] < 0:
                place(int(row), wanted[:, label].copy())
    for row in order[fold[order] < 0]:
        place(int(row), np.zeros(k))
    return fold


def _fit(x: torch.Tensor, y: torch.Tensor, start: Head, l2: float, loss_fn: LossFn) -> Head:
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


@dataclass
class GridWalk:
    """The strength chosen over some splits, and what was fitted there."""

    l2: float
    heads: list[Head]  # per split, at l2
    held_out: torch.Tensor  # [N, K] each held-out row's outputs at l2; NaN where never held out
    tried: list[dict[str, float | list[float]]]  # {"l2", "score"} per strength walked


def walk_grid(
    x: torch.Tensor,
    y: torch.Tensor,
    splits: Sequence[Split],
    num_outputs: int,
    loss_fn: LossFn,
    score: ScoreFn,
) -> GridWalk:
    """Fit every split from the strongest L2 to the weakest (each warm-started from its own
    last fit) and keep the strength whose pooled held-out outputs score best. ``x`` centred."""
    scored = torch.as_tensor(np.concatenate([held for _, held in splits]), device=x.device)
    heads = [(x.new_zeros(num_outputs, x.shape[1]), x.new_zeros(num_outputs)) for _ in splits]
    best: GridWalk | None = None
    best_score: Score | None = None
    tried: list[dict[str, float | list[float]]] = []
    misses = 0
    for l2 in L2_GRID:
        held_out = x.new_full((len(x), num_outputs), float("nan"))
        for i, (fit_rows, held_rows) in enumerate(splits):
            fit_at = torch.as_tensor(fit_rows, device=x.device)
            heads[i] = _fit(x[fit_at], y[fit_at], heads[i], l2, loss_fn)
            held_at = torch.as_tensor(held_rows, device=x.device)
            held_out[held_at] = torch.addmm(heads[i][1], x[held_at], heads[i][0].T)
        fit_score = score(held_out[scored], y[scored])
        tried.append({"l2": l2, "score": [float(s) for s in fit_score]})
        if best_score is None or fit_score > best_score:
            best, best_score, misses = GridWalk(l2, list(heads), held_out, tried), fit_score, 0
        else:
            misses += 1
            if misses >= _GRID_PATIENCE:
                break
    assert best is not None
    return best


def feature_scaling(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, scale) per dimension, each scale floored at a tenth of the median one."""
    mean = features.mean(dim=0)
    spread = features.std(dim=0) if len(features) > 1 else torch.ones_like(mean)
    floor = _MIN_RELATIVE_SCALE * spread.median().clamp_min(1e-12)
    return mean, spread.clamp_min(float(floor))


def cross_fit(
    features: torch.Tensor,
    targets: torch.Tensor,
    folds: np.ndarray,
    train_rows: np.ndarray,
    *,
    num_outputs: int,
    loss_fn: LossFn,
    score: ScoreFn,
    scale: bool = True,
) -> ProbeFit:
    """The cross-fitted probe: L2 chosen over ``folds`` (a fold id per row), out-of-fold
    outputs of every row at that strength, and the head refitted on all rows and on
    ``train_rows``. ``score`` ranks pooled held-out outputs against their targets. Features
    are centred, and scaled per dimension unless ``scale`` is False."""
    started = time.perf_counter()
    rows = np.arange(len(features))
    splits = [(rows[folds != f], rows[folds == f]) for f in np.unique(folds)]
    mean, spread = feature_scaling(features)
    if not scale:
        spread = torch.ones_like(spread)
    x = (features - mean) / spread
    small = x.device.type == "cpu" and x.numel() < _SINGLE_THREAD_ELEMENTS
    with torch_threads(1) if small else contextlib.nullcontext():
        walk = walk_grid(x, targets, splits, num_outputs, loss_fn, score)
        # The grid's strengths weigh a penalty against the mean loss of a fold's rows; kept
        # against the summed loss (a fixed prior, as scikit-learn's C), it shrinks with more
        # rows: a refit on n rows uses l2 * (fold rows / n).
        fold_rows = float(np.mean([len(fit_rows) for fit_rows, _ in splits]))
        start = (
            torch.stack([w for w, _ in walk.heads]).mean(dim=0),
            torch.stack([b for _, b in walk.heads]).mean(dim=0),
        )
        l2_all = walk.l2 * fold_rows / len(rows)
        weight, bias = _fit(x, targets, start, l2_all, loss_fn)
        l2_train = walk.l2 * fold_rows / len(train_rows)
        if len(train_rows) == len(rows):
            train_weight, train_bias = weight, bias
        else:
            at = torch.as_tensor(train_rows, device=x.device)
            train_weight, train_bias = _fit(x[at], targets[at], start, l2_train, loss_fn)
    details = {
        "grid": walk.tried,
        "fits": len(walk.tried) * len(splits) + (1 if len(train_rows) == len(rows) else 2),
        "l2_refit": {"all": l2_all, "train": l2_train},
        "seconds": round(time.perf_counter() - started, 4),
    }
    # Fold the scaling and centring in: W ((x - m) / s) + b = (W / s) x + (b - (W / s) m).
    weight, train_weight = weight / spread, train_weight / spread
    return ProbeFit(
        weight=weight,
        bias=bias - weight @ mean,
        train_weight=train_weight,
        train_bias=train_bias - train_weight @ mean,
        l2=walk.l2,
        oof=walk.held_out,
        folds=len(splits),
        details=details,
    )


def install_head(model: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Copy a [K, D] weight and [K] bias into the model's output layer."""
    layer = classifier_layer(model)
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight))
        layer.bias.copy_(bias.to(layer.bias))
