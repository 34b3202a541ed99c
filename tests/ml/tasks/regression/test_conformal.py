import math
from fractions import Fraction

import numpy as np
import pytest

from ml.tasks.regression.conformal import (
    MAX_STORED,
    fit_conformal,
    half_widths,
    leave_one_out_coverage,
    max_coverage,
)


def _exact_rank(n: int, coverage: float) -> int:
    """⌈(n + 1) c⌉ in exact arithmetic, c as written in decimal (0.9 is nine tenths)."""
    return math.ceil((n + 1) * Fraction(repr(coverage)))


@pytest.mark.parametrize("draw", ["normal", "heavy_tailed", "skewed"])
def test_ninety_percent_intervals_cover_fresh_data_about_ninety_percent_of_the_time(
    draw: str,
) -> None:
    coverages = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        sample = {
            "normal": lambda size, rng=rng: rng.normal(size=size),
            "heavy_tailed": lambda size, rng=rng: rng.standard_t(2, size=size),
            "skewed": lambda size, rng=rng: rng.exponential(size=size) - 1.0,
        }[draw]
        calibration = sample((50, 2))  # held-out prediction errors of two targets
        fresh = sample((500, 2))
        q = half_widths(fit_conformal(np.abs(calibration)), 0.9)
        coverages.append(float((np.abs(fresh) <= q).mean()))
    # Exchangeable errors: exactly ⌈51 * 0.9⌉ / 51 = 46 / 51 ≈ 0.902 in expectation.
    assert 0.88 <= np.mean(coverages) <= 0.93


@pytest.mark.parametrize("n", [9, 10, 19, 50, 99, 100, 1000])
@pytest.mark.parametrize("coverage", [0.05, 0.5, 0.8, 0.9, 0.95])
def test_the_half_width_is_the_rank_n_plus_one_times_c_residual(n: int, coverage: float) -> None:
    residuals = np.random.default_rng(n).exponential(size=(n, 3))
    k = _exact_rank(n, coverage)
    if k > n:
        with pytest.raises(ValueError):
            half_widths(fit_conformal(residuals), coverage)
        return
    expected = np.sort(residuals, axis=0)[k - 1]
    np.testing.assert_array_equal(half_widths(fit_conformal(residuals), coverage), expected)


def test_signs_do_not_matter() -> None:
    residuals = np.random.default_rng(0).normal(size=(40, 1))
    assert half_widths(fit_conformal(residuals), 0.9) == half_widths(
        fit_conformal(np.abs(residuals)), 0.9
    )


@pytest.mark.parametrize("n", [1, 5, 9, 19, 2000])
def test_an_unattainable_coverage_is_refused_naming_one_that_is_attainable(n: int) -> None:
    config = fit_conformal(np.ones((n, 1)))
    assert max_coverage(config) == pytest.approx(n / (n + 1))
    too_high = (n + 0.5) / (n + 1)
    with pytest.raises(ValueError, match="at most") as caught:
        half_widths(config, too_high)
    named = float(str(caught.value).rsplit("at most ", 1)[1])
    assert named <= max_coverage(config) < too_high
    assert max_coverage(config) - named < 1e-3
    half_widths(config, named)  # what the message offers does work
    half_widths(config, max_coverage(config))


@pytest.mark.parametrize("coverage", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_coverage_must_be_strictly_between_zero_and_one(coverage: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        half_widths(fit_conformal(np.ones((100, 1))), coverage)


def test_thinning_past_max_stored_only_widens_and_barely() -> None:
    n = 3 * MAX_STORED + 17
    residuals = np.random.default_rng(0).exponential(size=(n, 2))
    config = fit_conformal(residuals)
    assert config["n"] == n
    assert all(len(row) <= MAX_STORED for row in config["abs_residuals"])
    assert config["ranks"][-1] == n
    ordered = np.sort(residuals, axis=0)
    step = math.ceil(n / (MAX_STORED - 1))
    for coverage in np.linspace(0.01, max_coverage(config) - 1e-9, 400):
        k = _exact_rank(n, float(coverage))
        stored = half_widths(config, float(coverage))
        assert np.all(stored >= ordered[k - 1])  # never narrower than the exact interval
        assert np.all(stored <= ordered[min(n, k + step) - 1])


def test_small_sets_are_stored_whole() -> None:
    residuals = np.random.default_rng(0).exponential(size=(MAX_STORED, 1))
    config = fit_conformal(residuals)
    assert "ranks" not in config
    assert config["abs_residuals"] == [sorted(residuals[:, 0].tolist())]


def _brute_force_loo(residuals: np.ndarray, coverage: float) -> float:
    n = len(residuals)
    hits = []
    for i in range(n):
        others = np.delete(residuals, i, axis=0)
        q = half_widths(fit_conformal(others), coverage)
        hits.append(np.abs(residuals[i]) <= q)
    return float(np.mean(hits))


@pytest.mark.parametrize("n", [10, 11, 23, 60])
@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.9])
@pytest.mark.parametrize("ties", [False, True])
def test_leave_one_out_coverage_matches_refitting_without_each_residual(
    n: int, coverage: float, ties: bool
) -> None:
    residuals = np.random.default_rng(n).exponential(size=(n, 2))
    if ties:
        residuals = residuals.round(0)
    assert leave_one_out_coverage(residuals, coverage) == pytest.approx(
        _brute_force_loo(residuals, coverage)
    )


def test_validation_coverage_is_reported_where_n_minus_one_residuals_allow_it() -> None:
    residuals = np.random.default_rng(0).exponential(size=(12, 1))
    assert set(fit_conformal(residuals)["validation_coverage"]) == {"0.8", "0.9"}
    assert set(fit_conformal(residuals[:5])["validation_coverage"]) == {"0.8"}
    assert fit_conformal(residuals[:1])["validation_coverage"] == {}
    many = fit_conformal(np.random.default_rng(1).exponential(size=(400, 1)))
    assert set(many["validation_coverage"]) == {"0.8", "0.9", "0.95"}
    assert many["validation_coverage"]["0.9"] == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 1)), np.zeros(5), np.array([[1.0], [np.nan]]), np.array([[np.inf]])]
)
def test_residuals_must_be_a_finite_matrix(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        fit_conformal(bad)
