"""The cross-fitted probe: honest out-of-fold outputs, the L2 strength scikit-learn would pick
over the same folds, and at least the old single-split probe's accuracy on real data."""

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from ml.tasks.classification.loss import classification_loss
from ml.tasks.classification.targets import label_matrix
from ml.tasks.classification.training import ClassificationTraining
from ml.training.probe import (
    L2_GRID,
    cross_fit,
    feature_scaling,
    fold_count,
    stratified_folds,
    walk_grid,
)
from ml.training.split import stratified_split

TASK = ClassificationTraining()


def _blobs(n: int, seed: int, spread: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.randn(3, 16, generator=torch.Generator().manual_seed(0)) * 3
    return centres[y] + torch.randn(n, 16, generator=g) * spread + 10, y


def _noisy(seed: int, n: int = 150, d: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping classes: the best L2 strength lies inside the grid."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return torch.randn(3, d, generator=g)[y] * 0.6 + torch.randn(n, d, generator=g) + 5, y


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # scikit-learn's fits are small: on a loaded machine extra BLAS threads make them 20x slower.
    with threadpool_limits(1):
        yield


def _splits(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in np.unique(folds)]


def test_out_of_fold_outputs_never_saw_their_own_example() -> None:
    x, y = _blobs(90, seed=1)
    # One example sits in cluster 0 but is labelled 1, and only it has a 17th feature: any
    # head fitted on it can memorise its label along that feature.
    x = torch.cat([x, torch.zeros(90, 1)], dim=1)
    x[0, 16] = 50.0
    labels = y.clone()
    labels[0] = 1
    train_rows = np.arange(1, 90)  # the outlier is a validation row

    fit = TASK.probe(
        x, labels, train_rows, TASK.fit_targets(labels[train_rows], list("abc")), seed=0
    )

    assert int((x[0] @ fit.weight.T + fit.bias).argmax()) == 1  # the head on every row memorised it
    assert int(fit.oof[0].argmax()) == 0  # out of fold: its cluster's label, not its own
    assert int((x[0] @ fit.train_weight.T + fit.train_bias).argmax()) == 0  # never trained on it
    assert torch.equal(fit.oof[1:].argmax(1), labels[1:])
    assert fit.folds == 5 and fit.oof.shape == (90, 3)


def _scaled(x: torch.Tensor) -> torch.Tensor:
    mean, scale = feature_scaling(x)
    return (x - mean) / scale


@pytest.mark.parametrize("seed", [1, 3])
def test_strength_by_held_out_nll_is_scikit_learns_over_the_same_folds(seed: int) -> None:
    x, y = _noisy(seed)
    folds = stratified_folds(label_matrix(y, 3), fold_count(len(y)), seed)
    fit = cross_fit(
        x,
        y,
        folds,
        np.arange(len(y)),
        num_outputs=3,
        loss_fn=classification_loss(False),
        score=lambda logits, truth: (-float(F.cross_entropy(logits, truth)),),
    )
    # scikit-learn's C multiplies the summed loss of a fold's rows: C = 1 / (l2 * rows).
    rows = np.mean([len(fit_rows) for fit_rows, _ in _splits(folds)])
    search = GridSearchCV(
        LogisticRegression(tol=1e-6, max_iter=10_000),
        {"C": [1 / (l2 * rows) for l2 in L2_GRID]},
        cv=_splits(folds),
        scoring="neg_log_loss",
    ).fit(_scaled(x).numpy(), y.numpy())  # the probe's own scaling: the same problem
    assert fit.l2 == pytest.approx(1 / (search.best_params_["C"] * rows))


def test_strength_by_the_task_score_matches_scikit_learns_pooled_out_of_fold_score() -> None:
    # The task ranks strengths by macro-F1 then NLL of the pooled out-of-fold outputs (an F1
    # averaged over small folds is biased: Forman & Scholz, 2010); scikit-learn fitted on the
    # same folds gives the reference, within one step of the grid (its early exit).
    x, y = _noisy(4)
    fit = TASK.probe(x, y, np.arange(len(y)), TASK.fit_targets(y, list("abc")), seed=4)
    folds = stratified_folds(label_matrix(y, 3), fold_count(len(y)), 4)
    xc = _scaled(x).numpy()
    rows = np.mean([len(fit_rows) for fit_rows, _ in _splits(folds)])
    scores = []
    for l2 in L2_GRID:
        probs = np.zeros((len(y), 3))
        for fit_rows, held in _splits(folds):
            model = LogisticRegression(C=1 / (l2 * rows), tol=1e-6, max_iter=10_000)
            probs[held] = model.fit(xc[fit_rows], y[fit_rows].numpy()).predict_proba(xc[held])
        probs /= probs.sum(1, keepdims=True)  # float error: log_loss wants them to sum to 1
        macro_f1 = f1_score(y.numpy(), probs.argmax(1), average="macro")
        scores.append((round(macro_f1, 6), -log_loss(y.numpy(), probs)))
    reference = L2_GRID[max(range(len(scores)), key=lambda i: scores[i])]
    assert abs(np.log10(fit.l2 / reference)) <= 0.53  # grid steps are factors of about 3.2


def _digits_features() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits through a frozen random ReLU layer: a real small dataset on
    features a probe cannot simply read the answer from."""
    digits = load_digits()
    projection = torch.randn(64, 256, generator=torch.Generator().manual_seed(0)) / 8
    x = torch.relu(torch.tensor(digits.data, dtype=torch.float32) @ projection)
    return x, torch.tensor(digits.target)


def _old_and_new_accuracy(x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[float, float]:
    """Test accuracy of the single-split probe and of the cross-fitted one, on 300 examples."""
    order = np.random.default_rng(seed).permutation(len(x))
    pool, test = order[:300], order[300:]
    px, py = x[pool], y[pool]
    train_rows, val_rows = stratified_split(label_matrix(py, 10), 0.2, seed)
    fitted = TASK.fit_targets(py[train_rows], [str(i) for i in range(10)])
    # The old probe: L2 chosen on one validation split, head fitted on the training rows.
    mean = px.mean(0)
    walk = walk_grid(
        px - mean,
        py,
        [(train_rows, val_rows)],
        10,
        classification_loss(False),
        lambda logits, truth: TASK.score(TASK.summarize(logits, truth, fitted)),
    )
    weight, bias = walk.heads[0]
    fit = TASK.probe(px, py, train_rows, fitted, seed=seed)

    def accuracy(w: torch.Tensor, b: torch.Tensor) -> float:
        return float(((x[test] @ w.T + b).argmax(1) == y[test]).float().mean())

    return accuracy(weight, bias - weight @ mean), accuracy(fit.weight, fit.bias)


def test_cross_fitting_is_at_least_as_accurate_as_the_single_split_probe() -> None:
    x, y = _digits_features()
    old, new = zip(*(_old_and_new_accuracy(x, y, seed) for seed in range(3)), strict=True)
    assert np.mean(new) >= np.mean(old)


def test_folds_spread_every_label_evenly_and_depend_on_the_seed() -> None:
    rng = np.random.default_rng(0)
    single = np.eye(4, dtype=bool)[rng.choice(4, size=103, p=[0.5, 0.3, 0.15, 0.05])]
    multi = rng.random((103, 4)) < [0.5, 0.3, 0.1, 0.05]
    for labels in (single, multi):
        folds = stratified_folds(labels, 5, seed=1)
        assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
        sizes = np.bincount(folds, minlength=5)
        assert sizes.max() - sizes.min() <= 2
        per_fold = np.stack([labels[folds == f].sum(0) for f in range(5)])  # [folds, labels]
        assert np.all(np.abs(per_fold - labels.sum(0) / 5) <= 1.5)
    assert np.array_equal(stratified_folds(single, 5, 1), stratified_folds(single, 5, 1))
    assert not np.array_equal(stratified_folds(single, 5, 1), stratified_folds(single, 5, 2))


def test_tiny_data_with_a_label_seen_once_still_gets_finite_outputs() -> None:
    x, _ = _blobs(7, seed=2)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2])  # label 2 has one example, held out in one fold
    fit = TASK.probe(x, y, np.arange(6), TASK.fit_targets(y[:6], list("abc")), seed=0)
    assert fit.folds == 5
    assert torch.isfinite(fit.oof).all() and torch.isfinite(fit.weight).all()
    assert fold_count(3) == 3
    with pytest.raises(ValueError):
        fold_count(1)
