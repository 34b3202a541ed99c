"""Ridge regression on frozen features, its strength chosen by k-fold cross-validation.

The penalty is scikit-learn's ``Ridge``: minimise ||Y - X W - b||² + alpha ||W||² with an
unpenalised intercept, so a fit equals ``Ridge(alpha)``'s and alpha keeps its meaning as
noise / prior variance whatever the number of rows. Features are centred (folded back into
the bias) but not rescaled, as in the classification probe (ml/training/probe.py).

Everything is closed form in float64. Each fit is one symmetric eigendecomposition, reused
for the whole alpha grid: of the D x D Gram matrix when there are at least as many rows as
features, else of the n x n kernel matrix (the dual form, same solution). A fold's Gram
matrix is the whole data's minus the held-out rows', so the rows are multiplied once.
"""

from dataclasses import dataclass

import numpy as np
import torch

K_FOLDS = 5
# alpha / s, strongest first, with s the features' total variance (mean squared distance
# from their mean): with standardised targets the best alpha is about noise share * s for a
# signal spread over the features, and the range leaves room either side of that.
RELATIVE_ALPHAS = tuple(10.0 ** (4 - i / 3) for i in range(31))  # 1e4 .. 1e-6


@dataclass
class _Moments:
    """Sufficient statistics of a set of rows for the primal (Gram) form."""

    n: int
    sum_x: torch.Tensor  # [D]
    sum_y: torch.Tensor  # [T]
    xx: torch.Tensor  # [D, D]
    xy: torch.Tensor  # [D, T]

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor) -> "_Moments":
        return cls(len(x), x.sum(dim=0), y.sum(dim=0), x.T @ x, x.T @ y)

    def __sub__(self, other: "_Moments") -> "_Moments":
        return _Moments(
            self.n - other.n,
            self.sum_x - other.sum_x,
            self.sum_y - other.sum_y,
            self.xx - other.xx,
            self.xy - other.xy,
        )


@dataclass
class _Solution:
    """W(alpha) = basis diag(1 / (eigenvalues + alpha)) coefficients, for any alpha."""

    eigenvalues: torch.Tensor  # [r]
    basis: torch.Tensor  # [D, r]
    coefficients: torch.Tensor  # [r, T]
    x_mean: torch.Tensor  # [D]
    y_mean: torch.Tensor  # [T]

    def weight(self, alpha: float) -> torch.Tensor:
        """[D, T] on centred features."""
        return self.basis @ (self.coefficients / (self.eigenvalues + alpha)[:, None])

    def predict(self, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """[A, n, T]: rows ``x`` predicted at every alpha."""
        projected = (x - self.x_mean) @ self.basis  # [n, r]
        scaled = self.coefficients / (self.eigenvalues + alphas[:, None])[:, :, None]
        return projected @ scaled + self.y_mean


def _primal(m: _Moments) -> _Solution:
    x_mean, y_mean = m.sum_x / m.n, m.sum_y / m.n
    gram = m.xx - m.n * torch.outer(x_mean, x_mean)
    cross = m.xy - m.n * torch.outer(x_mean, y_mean)
    eigenvalues, vectors = torch.linalg.eigh((gram + gram.T) / 2)
    return _Solution(eigenvalues.clamp(min=0), vectors, vectors.T @ cross, x_mean, y_mean)


def _dual(x: torch.Tensor, y: torch.Tensor) -> _Solution:
    x_mean, y_mean = x.mean(dim=0), y.mean(dim=0)
    centred = x - x_mean
    eigenvalues, vectors = torch.linalg.eigh(centred @ centred.T)
    basis = centred.T @ vectors
    return _Solution(eigenvalues.clamp(min=0), basis, vectors.T @ (y - y_mean), x_mean, y_mean)


def _solve(x: torch.Tensor, y: torch.Tensor, rows: np.ndarray, total: _Moments) -> _Solution:
    """The fit on ``rows`` of (x, y), by whichever decomposition is smaller."""
    if len(rows) < x.shape[1]:
        index = torch.as_tensor(rows, device=x.device)
        return _dual(x[index], y[index])
    rest = np.setdiff1d(np.arange(len(x)), rows)
    index = torch.as_tensor(rest, device=x.device)
    return _primal(total - _Moments.of(x[index], y[index]))


def kfold(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k seeded folds of 0..n-1 (held-out rows, sorted), sizes differing by at most one."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(fold) for fold in np.array_split(order, k)]


def alpha_grid(features: torch.Tensor) -> np.ndarray:
    """RELATIVE_ALPHAS in the features' own scale."""
    x = features.double()
    spread = float(torch.square(x - x.mean(dim=0)).sum(dim=1).mean())
    if not np.isfinite(spread) or spread <= 0:
        spread = 1.0  # constant features: every alpha gives the mean, any scale will do
    return spread * np.asarray(RELATIVE_ALPHAS)


def _centre(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features - their mean, the mean) in float64: centring everything once keeps the Gram
    subtractions from cancelling large feature means."""
    x = features.double()
    offset = x.mean(dim=0)
    return x - offset, offset


def _head(solution: _Solution, alpha: float, offset: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(weight [T, D], bias [T]) on the original features.

    W (x - offset - m) + y_mean = W x + (y_mean - W (offset + m)).
    """
    weight = solution.weight(alpha)
    return weight.T, solution.y_mean - (offset + solution.x_mean) @ weight


def fit_ridge(
    features: torch.Tensor, targets: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, ...]:
    """(weight [T, D], bias [T]) in float64 on the original features, fitted on every row."""
    x, offset = _centre(features)
    y = targets.double().reshape(len(x), -1)
    solution = _solve(x, y, np.arange(len(x)), _Moments.of(x, y))
    return _head(solution, alpha, offset)


@dataclass
class RidgeCV:
    alpha: float
    alphas: list[float]
    cv_mse: list[float]  # mean over folds of each fold's MSE (over rows and targets)
    folds: int
    oof: torch.Tensor  # [N, T] out-of-fold predictions at the chosen alpha, float64
    weight: torch.Tensor  # [T, D] refitted on every row, on the original features
    bias: torch.Tensor  # [T]
    train_weight: torch.Tensor  # [T, D] refitted on train_rows only
    train_bias: torch.Tensor


def ridge_cv(
    features: torch.Tensor,
    targets: torch.Tensor,
    train_rows: np.ndarray,
    *,
    seed: int,
    folds: int = K_FOLDS,
) -> RidgeCV:
    """Choose alpha by k-fold CV on all rows, then refit on all rows and on train_rows."""
    n = len(features)
    if n < 2:
        raise ValueError("cross-validating a probe needs at least 2 examples")
    train_rows = np.asarray(train_rows)
    if len(train_rows) == 0:
        raise ValueError("the probe needs at least one training row")
    x, offset = _centre(features)
    y = targets.double().reshape(n, -1)
    alphas = alpha_grid(x)
    alpha_t = torch.as_tensor(alphas, device=x.device)
    total = _Moments.of(x, y)
    held_out = kfold(n, min(folds, n), seed)
    oof = x.new_zeros(len(alphas), n, y.shape[1])
    fold_mse = []
    for rows in held_out:
        index = torch.as_tensor(rows, device=x.device)
        predicted = _solve(x, y, np.setdiff1d(np.arange(n), rows), total).predict(x[index], alpha_t)
        oof[:, index] = predicted
        fold_mse.append(torch.square(predicted - y[index]).mean(dim=(1, 2)))
    cv_mse = torch.stack(fold_mse).mean(dim=0)
    best = int(torch.argmin(cv_mse))  # the first (strongest) of equals, like GridSearchCV
    alpha = float(alphas[best])

    weight, bias = _head(_solve(x, y, np.arange(n), total), alpha, offset)
    train_weight, train_bias = _head(_solve(x, y, train_rows, total), alpha, offset)
    return RidgeCV(
        alpha=alpha,
        alphas=[float(a) for a in alphas],
        cv_mse=[float(v) for v in cv_mse],
        folds=len(held_out),
        oof=oof[best],
        weight=weight,
        bias=bias,
        train_weight=train_weight,
        train_bias=train_bias,
    )
