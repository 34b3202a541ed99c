import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_predict

from ml.tasks.regression.ridge import RELATIVE_ALPHAS, alpha_grid, fit_ridge, kfold, ridge_cv


def _problem(n: int, d: int, targets: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uncentred, unevenly scaled features (like a backbone's) and a noisy linear target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d) + rng.uniform(-5, 5, size=d)
    y = x @ rng.normal(size=(d, targets)) + rng.normal(size=(n, targets))
    return x, y


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(a)


# More rows than features (the Gram form), fewer (the kernel form), and tiny.
SHAPES = [(200, 20), (30, 50), (7, 3)]


@pytest.mark.parametrize(("n", "d"), SHAPES)
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 100.0])
def test_a_fit_equals_sklearn_ridge_at_the_same_alpha(n: int, d: int, alpha: float) -> None:
    x, y = _problem(n, d)
    weight, bias = fit_ridge(_t(x), _t(y), alpha)
    reference = Ridge(alpha=alpha).fit(x, y)
    np.testing.assert_allclose(weight.numpy(), reference.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(bias.numpy(), reference.intercept_, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_cross_validation_picks_what_grid_search_picks_and_refits_like_sklearn(
    n: int, d: int
) -> None:
    x, y = _problem(n, d, seed=n)
    train_rows = np.arange(0, n, 2)
    fit = ridge_cv(_t(x), _t(y), train_rows, seed=7)
    folds = kfold(n, min(5, n), seed=7)
    splits = [(np.setdiff1d(np.arange(n), rows), rows) for rows in folds]
    search = GridSearchCV(
        Ridge(), {"alpha": fit.alphas}, cv=splits, scoring="neg_mean_squared_error"
    ).fit(x, y)
    assert fit.folds == len(folds) == min(5, n)
    assert fit.alpha == search.best_params_["alpha"]
    np.testing.assert_allclose(fit.cv_mse, -search.cv_results_["mean_test_score"], rtol=1e-7)
    oof = cross_val_predict(Ridge(alpha=fit.alpha), x, y, cv=splits)
    np.testing.assert_allclose(fit.oof.numpy(), oof, rtol=1e-6, atol=1e-8)
    everything = Ridge(alpha=fit.alpha).fit(x, y)
    np.testing.assert_allclose(fit.weight.numpy(), everything.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.bias.numpy(), everything.intercept_, rtol=1e-6, atol=1e-8)
    train_only = Ridge(alpha=fit.alpha).fit(x[train_rows], y[train_rows])
    np.testing.assert_allclose(fit.train_weight.numpy(), train_only.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.train_bias.numpy(), train_only.intercept_, rtol=1e-6, atol=1e-8)


def test_the_chosen_alpha_follows_the_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40))
    signal = x @ rng.normal(size=(40, 1))
    quiet = ridge_cv(_t(x), _t(signal + 0.01 * rng.normal(size=(300, 1))), np.arange(300), seed=0)
    noisy = ridge_cv(_t(x), _t(signal + 10.0 * rng.normal(size=(300, 1))), np.arange(300), seed=0)
    assert noisy.alpha > 100 * quiet.alpha
    # The grid is the features' own scale: rescaling them rescales alpha, not the fit.
    scaled = ridge_cv(_t(1000 * x), _t(signal), np.arange(300), seed=0)
    plain = ridge_cv(_t(x), _t(signal), np.arange(300), seed=0)
    assert scaled.alpha == pytest.approx(1e6 * plain.alpha)
    np.testing.assert_allclose(scaled.oof.numpy(), plain.oof.numpy(), rtol=1e-6, atol=1e-8)


def test_the_grid_runs_from_strong_to_weak_in_the_features_scale() -> None:
    x = torch.randn(50, 8, dtype=torch.float64)
    grid = alpha_grid(x)
    spread = float(((x - x.mean(0)) ** 2).sum(1).mean())
    np.testing.assert_allclose(grid, spread * np.asarray(RELATIVE_ALPHAS))
    assert np.all(np.diff(grid) < 0)


def test_folds_are_seeded_disjoint_and_cover_every_row() -> None:
    folds = kfold(23, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert {len(f) for f in folds} == {4, 5}
    assert all(np.array_equal(a, b) for a, b in zip(folds, kfold(23, 5, seed=1), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, kfold(23, 5, seed=2), strict=True))


def test_constant_features_predict_the_mean() -> None:
    y = np.arange(10.0)[:, None]
    fit = ridge_cv(torch.ones(10, 4), _t(y), np.arange(10), seed=0)
    assert torch.isfinite(fit.oof).all()
    np.testing.assert_allclose(fit.bias.numpy(), [4.5])
    np.testing.assert_allclose(fit.weight.numpy(), 0.0, atol=1e-12)


def test_too_few_rows_are_refused() -> None:
    with pytest.raises(ValueError):
        ridge_cv(torch.ones(1, 3), torch.ones(1, 1), np.arange(1), seed=0)
    with pytest.raises(ValueError):
        ridge_cv(torch.randn(5, 3), torch.randn(5, 1), np.arange(0), seed=0)
