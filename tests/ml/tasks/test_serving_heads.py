"""The serving heads the tasks build from an artifact's config.json: what a prediction says."""

from typing import Any

import numpy as np
import pytest

from ml.tasks import PredictOptions, get_task
from ml.tasks.classification.outputs import (
    calibrated_probabilities,
    format_predictions,
    resolve_thresholds,
)
from ml.tasks.regression.conformal import fit_conformal, half_widths

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-2.0, 1.5, 1.4]])


def _classifier(**config: object) -> dict:
    return {"task": "image_classification", "labels": ["a", "b", "c"], **config}


@pytest.mark.parametrize("task", ["image_classification", "text_classification"])
def test_a_single_label_head_answers_as_format_predictions_always_did(task: str) -> None:
    head = get_task(task).serving_head(_classifier(temperature=1.7, thresholds=None))
    probs = head.postprocess(LOGITS)
    np.testing.assert_allclose(probs, calibrated_probabilities(LOGITS, 1.7, multilabel=False))
    for top_k in (1, 2, 10):
        got = head.format(probs, PredictOptions(top_k=top_k, coverage=0.3))
        assert got == format_predictions(probs, ["a", "b", "c"], top_k)
    head.check(PredictOptions(top_k=1000))  # nothing a classifier refuses


def test_a_multilabel_head_uses_sigmoids_and_the_config_thresholds() -> None:
    config = _classifier(multilabel=True, temperature=0.8, thresholds={"a": 0.3, "c": 0.9})
    head = get_task("text_classification").serving_head(config)
    probs = head.postprocess(LOGITS)
    np.testing.assert_allclose(probs, calibrated_probabilities(LOGITS, 0.8, multilabel=True))
    thresholds = resolve_thresholds({"a": 0.3, "c": 0.9}, ["a", "b", "c"])
    expected = format_predictions(probs, ["a", "b", "c"], 2, thresholds)
    assert head.format(probs, PredictOptions(top_k=2)) == expected
    assert head.accuracy(probs, [0, 1, 2]) is None  # judged by agreement, not accuracy


def test_a_classifier_compares_decisions_and_probabilities() -> None:
    head = get_task("image_classification").serving_head(_classifier(temperature=1.0))
    reference = head.postprocess(LOGITS)
    flipped = reference.copy()
    flipped[2] = reference[2, [0, 2, 1]]  # the last row's top two labels swap
    result = head.compare(flipped, reference)
    assert result["agreement"] == pytest.approx(2 / 3)
    assert result["max_abs_diff"] == pytest.approx(abs(reference[2, 1] - reference[2, 2]))
    assert head.compare(reference, reference) == {"agreement": 1.0, "max_abs_diff": 0.0}
    assert head.accuracy(reference, [0, 2, 0]) == pytest.approx(2 / 3)
    assert head.accuracy(reference, None) is None


def test_a_temperature_must_be_positive() -> None:
    with pytest.raises(ValueError, match="temperature"):
        get_task("image_classification").serving_head(_classifier(temperature=-1.0))


RNG = np.random.default_rng(3)
ONE: dict[str, Any] = {
    "task": "image_regression",
    "targets": ["price"],
    "target_scale": {"mean": [250.0], "std": [40.0]},
    "intervals": fit_conformal(np.abs(RNG.normal(0, 40, (19, 1)))),
}
TWO: dict[str, Any] = {
    "task": "text_regression",
    "targets": ["width", "height"],
    "target_scale": {"mean": [12.0, -3.0], "std": [0.5, 8.0]},
    "intervals": fit_conformal(np.abs(RNG.normal(0, [0.5, 8.0], (50, 2)))),
}


def test_regression_values_are_destandardised_in_float64() -> None:
    head = get_task("text_regression").serving_head(TWO)
    raw = np.array([[0.0, 0.0], [1.0, -2.0]], dtype=np.float32)
    values = head.postprocess(raw)
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, [[12.0, -3.0], [12.5, -19.0]])


def test_one_target_is_a_value_and_an_interval_at_the_asked_coverage() -> None:
    head = get_task("image_regression").serving_head(ONE)
    values = head.postprocess(np.array([[0.5], [-1.0]]))
    for coverage in (0.5, 0.8, 0.9):
        (q,) = half_widths(ONE["intervals"], coverage)
        first, second = head.format(values, PredictOptions(coverage=coverage, top_k=1))
        assert first == {"value": 270.0, "interval": [270.0 - q, 270.0 + q], "coverage": coverage}
        assert second["interval"] == [210.0 - q, 210.0 + q]
        assert all(type(x) is float for x in [first["value"], *first["interval"]])
    assert head.accuracy(values, [1.0, 2.0]) is None


def test_several_targets_are_lists_named_by_targets() -> None:
    head = get_task("text_regression").serving_head(TWO)
    q = half_widths(TWO["intervals"], 0.9)
    (prediction,) = head.format(np.array([[12.5, -19.0]]), PredictOptions())
    assert prediction == {
        "value": [12.5, -19.0],
        "interval": [[12.5 - q[0], 12.5 + q[0]], [-19.0 - q[1], -19.0 + q[1]]],
        "coverage": 0.9,
        "targets": ["width", "height"],
    }


def test_a_coverage_out_of_range_or_beyond_the_calibration_is_refused() -> None:
    head = get_task("image_regression").serving_head(ONE)  # 19 residuals: at most 0.95
    head.check(PredictOptions(coverage=0.95))
    with pytest.raises(ValueError, match=r"calibrated on \(19\); ask for at most 0.95\b"):
        head.check(PredictOptions(coverage=0.96))
    for coverage in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            head.check(PredictOptions(coverage=coverage))
    with pytest.raises(ValueError):
        head.format(np.array([[1.0]]), PredictOptions(coverage=0.99))


def test_regressors_are_compared_in_standard_deviations_of_each_target() -> None:
    head = get_task("text_regression").serving_head(TWO)
    reference = np.array([[12.0, -3.0], [13.0, 5.0], [11.0, 0.0]])
    moved = reference + np.array([[0.004, 0.0], [0.0, 0.4], [0.0, 0.0]])  # 0.008, 0.05 std
    result = head.compare(moved, reference)
    assert result["max_abs_diff"] == pytest.approx(0.05)
    assert result["agreement"] == pytest.approx(2 / 3)  # the second row is past 0.01 std


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target_scale": {"mean": [0.0], "std": [0.0]}}, "positive"),
        ({"target_scale": {"mean": [0.0, 1.0], "std": [1.0, 1.0]}}, "each of 1 targets"),
        ({"intervals": fit_conformal(np.ones((5, 2)))}, "residuals for each of 1 targets"),
    ],
)
def test_a_regression_config_that_does_not_add_up_is_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_task("image_regression").serving_head(ONE | change)
