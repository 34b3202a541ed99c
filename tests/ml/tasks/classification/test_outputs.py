import numpy as np
import pytest

from ml.tasks.classification.outputs import (
    calibrated_probabilities,
    format_predictions,
    resolve_thresholds,
)


def test_softmax_is_temperature_scaled_and_stable_for_huge_logits() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [1000.0, 0.0, -1000.0]])
    probs = calibrated_probabilities(logits, temperature=2.0, multilabel=False)
    expected = np.exp([1.0, 0.0, -0.5]) / np.exp([1.0, 0.0, -0.5]).sum()
    np.testing.assert_allclose(probs[0], expected)
    np.testing.assert_allclose(probs[1], [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_multilabel_uses_an_independent_sigmoid_per_label() -> None:
    logits = np.array([[0.0, 3.0, -800.0]])
    probs = calibrated_probabilities(logits, temperature=1.5, multilabel=True)
    np.testing.assert_allclose(probs, [[0.5, 1 / (1 + np.exp(-2.0)), 0.0]], atol=1e-12)


def test_top_k_is_sorted_and_ties_keep_label_order() -> None:
    probs = np.array([[0.2, 0.4, 0.4]])
    (prediction,) = format_predictions(probs, ["a", "b", "c"], top_k=2)
    assert prediction == {
        "label": "b",
        "score": 0.4,
        "scores": [{"label": "b", "score": 0.4}, {"label": "c", "score": 0.4}],
    }


def test_multilabel_answers_every_label_over_its_threshold_best_first() -> None:
    probs = np.array([[0.35, 0.9, 0.55], [0.1, 0.2, 0.3]])
    thresholds = resolve_thresholds({"a": 0.3, "c": 0.6}, ["a", "b", "c"])
    first, second = format_predictions(probs, ["a", "b", "c"], top_k=1, thresholds=thresholds)
    assert first == {"labels": ["b", "a"], "scores": [{"label": "b", "score": 0.9}]}
    assert second["labels"] == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, [0.5, 0.5]), (0.7, [0.7, 0.7]), ([0.2, 0.8], [0.2, 0.8]), ({"y": 0.1}, [0.5, 0.1])],
)
def test_thresholds_from_config(given: object, expected: list[float]) -> None:
    np.testing.assert_allclose(resolve_thresholds(given, ["x", "y"]), expected)


def test_a_threshold_list_must_match_the_labels() -> None:
    with pytest.raises(ValueError):
        resolve_thresholds([0.5], ["x", "y"])
