import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from ml.tasks.regression.metrics import (
    MAX_HISTOGRAM_BINS,
    average_ranks,
    mae,
    per_target,
    r2,
    residual_histogram,
    rmse,
    spearman,
)


def _data(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n, 3)) * [1.0, 100.0, 0.01] + [0.0, 5000.0, -2.0]
    predicted = truth + rng.normal(size=(n, 3)) * [0.5, 80.0, 0.02]
    return predicted, truth


@pytest.mark.parametrize("seed", range(5))
def test_errors_and_r2_match_sklearn_per_target(seed: int) -> None:
    predicted, truth = _data(seed)
    raw = {"multioutput": "raw_values"}
    np.testing.assert_allclose(mae(predicted, truth), mean_absolute_error(truth, predicted, **raw))
    np.testing.assert_allclose(
        rmse(predicted, truth), np.sqrt(mean_squared_error(truth, predicted, **raw))
    )
    np.testing.assert_allclose(r2(predicted, truth), r2_score(truth, predicted, **raw))


def test_r2_of_a_constant_truth_is_finite_like_sklearn() -> None:
    truth = np.full((5, 1), 3.0)
    assert r2(truth + 1.0, truth)[0] == r2_score(truth, truth + 1.0) == 0.0
    assert r2(truth, truth)[0] == r2_score(truth, truth) == 1.0


def test_one_dimensional_inputs_are_one_target() -> None:
    predicted, truth = _data(0)
    assert mae(predicted[:, 1], truth[:, 1]).shape == (1,)
    with pytest.raises(ValueError):
        mae(predicted, truth[:, :2])


def test_average_ranks_share_ties_like_scipy() -> None:
    values = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0, 7.0])
    np.testing.assert_array_equal(average_ranks(values), rankdata(values))


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_with_and_without_ties(seed: int) -> None:
    predicted, truth = _data(seed)
    expected = [spearmanr(predicted[:, j], truth[:, j]).statistic for j in range(3)]
    np.testing.assert_allclose(spearman(predicted, truth), expected)
    # Many ties on both sides (a handful of distinct values per column).
    tied_p = np.column_stack([predicted[:, 0].round(1), predicted[:, 1].round(-1)])
    tied_t = np.column_stack([truth[:, 0].round(0), truth[:, 1].round(-2)])
    expected = [spearmanr(tied_p[:, j], tied_t[:, j]).statistic for j in range(2)]
    np.testing.assert_allclose(spearman(tied_p[:, :2], tied_t[:, :2]), expected)


def test_spearman_of_a_constant_prediction_is_zero_not_nan() -> None:
    truth = np.arange(10.0)[:, None]
    assert spearman(np.zeros_like(truth), truth).tolist() == [0.0]
    assert spearman(-truth, truth).tolist() == [pytest.approx(-1.0)]


def test_per_target_reports_every_metric() -> None:
    predicted, truth = _data(1)
    scores = per_target(predicted, truth)
    assert set(scores) == {"mae", "rmse", "r2", "spearman"}
    assert all(values.shape == (3,) for values in scores.values())


@pytest.mark.parametrize("n", [1, 2, 30, 5000])
def test_residual_histogram_counts_every_residual_in_a_bounded_number_of_bins(n: int) -> None:
    residuals = np.random.default_rng(n).standard_t(3, size=n)
    histogram = residual_histogram(residuals)
    counts, edges = histogram["counts"], histogram["edges"]
    assert sum(counts) == n
    assert len(edges) == len(counts) + 1
    assert 1 <= len(counts) <= MAX_HISTOGRAM_BINS
    assert edges[0] <= residuals.min() and edges[-1] >= residuals.max()
    assert np.all(np.diff(edges) > 0)
    if n >= 30:
        assert len(counts) > 5  # enough bars to show a shape


def test_residual_histogram_of_identical_residuals() -> None:
    histogram = residual_histogram(np.zeros(8))
    assert histogram["counts"] == [8]
