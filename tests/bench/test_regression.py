"""bench/regression.py: the scores, the ridge baseline's interval, serving-path predictions."""

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.common import ingest_regression_upload, train_and_save, write_regression_csv
from bench.regression import Row, coverage_band, ridge_baseline, score, served_predictions, verdict
from ml.backbones.catalog import load_catalog
from ml.backbones.testing import TINY_TEXT_ID, write_test_catalog


def test_score_counts_targets_inside_their_interval_edges_included() -> None:
    truth = [1.0, 2.0, 3.0, 4.0]
    values = np.array([1.0, 2.5, 3.0, 2.0])
    intervals = np.array([[0.0, 1.0], [2.5, 3.0], [2.0, 4.0], [1.0, 3.0]])
    s = score(truth, values, intervals)
    assert s.coverage == 0.5  # 1.0 on its upper edge, 3.0 inside; 2.0 and 4.0 outside
    assert s.width == pytest.approx((1 + 0.5 + 2 + 2) / 4)
    assert s.rmse == pytest.approx(np.sqrt((0 + 0.25 + 0 + 4) / 4))
    assert s.r2 == pytest.approx(1 - 4.25 / 5.0)


@pytest.mark.parametrize("scale_features", [False, True])
def test_ridge_baseline_interval_covers_about_ninety_percent_of_new_data(
    scale_features: bool,
) -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=20)
    x = rng.normal(size=(3000, 20))
    y = x @ weights + 5.0 + rng.normal(scale=0.5, size=3000)
    fit = ridge_baseline(x[:1000], y[:1000], 0.9, scale_features=scale_features)

    values = fit.predict(x[1000:])
    intervals = np.stack([values - fit.half_width, values + fit.half_width], axis=1)
    s = score(y[1000:].tolist(), values, intervals)
    # Noise of 0.5: the 90% half-width of a near-perfect fit is about 1.645 * 0.5.
    assert fit.half_width == pytest.approx(1.645 * 0.5, rel=0.1)
    assert abs(s.coverage - 0.9) < coverage_band(2000, 1000)
    assert s.rmse == pytest.approx(0.5, rel=0.1)


def test_coverage_band_counts_the_test_and_the_calibration_draws() -> None:
    assert coverage_band(100, 10**12) == pytest.approx(0.06)  # the binomial alone
    assert coverage_band(100, 100) == pytest.approx(0.06 * np.sqrt(2))
    assert coverage_band(2500, 2500) < coverage_band(2500, 200)


def _row(data: str, method: str, kept: str, ratio: float, coverage: float) -> Row:
    return Row(data, method, kept, 800, 800, ratio, 0.5, coverage, 1.0, ratio, None, 1.0, 1.0)


def test_verdict_rates_each_method_against_the_best_baseline_and_the_coverage_goal() -> None:
    rows = [
        _row("image", "baseline: a", "-", 1.0, 0.91),
        _row("image", "full", "lp_ft", 0.95, 0.90),
        _row("image", "auto", "linear_probe", 1.01, 0.85),
        _row("text", "linear_probe", "linear_probe", 1.10, 0.925),
    ]
    # 800 test targets, 800 residuals: a correct interval strays 0.03 from 0.9 by chance.
    assert verdict(rows) == (
        "verdict: image full: RMSE x0.950 (beats the best baseline), coverage 0.900 in "
        "0.88-0.92; image auto: RMSE x1.010 (matches the best baseline), coverage 0.850 "
        "OUTSIDE (beyond chance, ±0.030) 0.88-0.92; text linear_probe: RMSE x1.100 (does NOT "
        "match the best baseline), coverage 0.925 outside (within chance, ±0.030) 0.88-0.92"
    )


def test_served_predictions_are_values_with_their_intervals(tmp_path: Path) -> None:
    spec = load_catalog([write_test_catalog(tmp_path / "tiny.json")])[TINY_TEXT_ID]
    texts = [f"review number {i} of this film" for i in range(40)]
    targets = [float(i % 7) - 3.0 for i in range(40)]
    upload = write_regression_csv(tmp_path / "train.csv", texts, targets)
    dataset = ingest_regression_upload(upload, "text_regression", tmp_path / "data")
    trained = train_and_save(dataset.path, spec, "linear_probe", tmp_path / "job")

    values, intervals = served_predictions(
        trained.artifact_dir, ["a new review", "and one more"], torch.device("cpu")
    )

    assert values.shape == (2,) and intervals.shape == (2, 2)
    assert np.all(intervals[:, 0] <= values) and np.all(values <= intervals[:, 1])
    assert np.all(intervals[:, 1] > intervals[:, 0])
