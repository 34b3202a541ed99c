import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from ml.tasks.classification.metrics import (
    best_thresholds,
    multilabel_metrics,
    single_label_metrics,
)


def test_single_label_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    y_true = rng.integers(0, 3, size=200)  # "d" never occurs in truth ...
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, size=200))
    y_pred[:3] = 3  # ... but is predicted a few times

    got = single_label_metrics(y_true, y_pred, labels)

    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert got["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for i, label in enumerate(labels):
        assert got["per_label"][label] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        )


def test_label_absent_from_truth_and_prediction_is_left_out_of_macro_f1() -> None:
    got = single_label_metrics(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "c"])
    assert got["macro_f1"] == pytest.approx(f1_score([0, 0, 1], [0, 1, 1], average="macro"))
    assert got["per_label"]["c"]["support"] == 0


def test_multilabel_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.random((100, 5)) < 0.3
    y_pred = np.where(rng.random((100, 5)) < 0.8, y_true, ~y_true)
    labels = list("vwxyz")

    got = multilabel_metrics(y_true, y_pred, labels)

    assert got["subset_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["accuracy"] == got["subset_accuracy"]
    assert got["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert got["micro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="micro"))
    assert got["per_label"]["x"]["f1"] == pytest.approx(f1_score(y_true[:, 2], y_pred[:, 2]))


def test_thresholds_maximise_f1_per_label() -> None:
    rng = np.random.default_rng(2)
    y_true = rng.random((300, 3)) < 0.3
    # Label 0 is well separated at 0.2, label 1 at 0.8; label 2 has no positive at all.
    probs = np.stack(
        [
            np.where(y_true[:, 0], 0.25, 0.1) + rng.random(300) * 0.05,
            np.where(y_true[:, 1], 0.9, 0.7) + rng.random(300) * 0.05,
            rng.random(300),
        ],
        axis=1,
    )
    y_true[:, 2] = False

    thresholds = best_thresholds(y_true, probs)

    assert 0.15 < thresholds[0] <= 0.25
    assert 0.75 < thresholds[1] <= 0.9
    assert thresholds[2] == 0.5
    for j in range(2):
        assert f1_score(y_true[:, j], probs[:, j] >= thresholds[j]) == 1.0


def test_thresholds_never_split_tied_scores() -> None:
    y_true = np.array([[1], [0], [1], [0]], dtype=bool)
    probs = np.array([[0.9], [0.6], [0.6], [0.1]])
    (threshold,) = best_thresholds(y_true, probs)
    predicted = probs[:, 0] >= threshold
    assert predicted[1] == predicted[2]
    # The best cut that respects the tie keeps both 0.6s: F1 = 2*2 / (3 + 2) = 0.8 vs 2/3.
    assert f1_score(y_true[:, 0], predicted) == pytest.approx(0.8)
