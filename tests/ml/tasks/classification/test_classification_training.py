"""Classification's training section, as the trainer calls it through the Task seam."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.datasets.store import Example, StoredDataset
from ml.tasks import ProbeFit
from ml.tasks.classification.calibration import probabilities
from ml.tasks.classification.metrics import best_thresholds
from ml.tasks.classification.training import ClassificationTraining

TASK = ClassificationTraining()


def _dataset(rows: Sequence[tuple[str, ...]], multilabel: bool) -> StoredDataset:
    examples = tuple(
        Example(target=labels, text=f"text {i}", file=None, source=f"row {i}")
        for i, labels in enumerate(rows)
    )
    labels = tuple(sorted({label for row in rows for label in row}))
    return StoredDataset(Path("unused"), "text_classification", multilabel, labels, examples)


def test_targets_split_and_weights_of_an_imbalanced_single_label_dataset() -> None:
    dataset = _dataset([("cat",)] * 30 + [("dog",)] * 10, multilabel=False)
    names = TASK.names(dataset)
    targets = TASK.encode(dataset, names)
    assert names == ["cat", "dog"] and targets.tolist() == [0] * 30 + [1] * 10

    train, val = TASK.split(targets, 0.2, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(40))
    assert np.bincount(targets[val].numpy()).tolist() == [6, 2]  # stratified

    fitted = TASK.fit_targets(targets[train], names)
    assert fitted.num_outputs == 2 and fitted.names == names
    assert fitted.info == {"multilabel": False}
    assert fitted.class_weights is not None
    assert fitted.class_weights == pytest.approx([32 / 48, 32 / 16])  # n / (labels * count)
    ((message, details),) = fitted.warnings
    assert "inverse frequency" in message
    assert details["class_weights"] == dict(zip(names, fitted.class_weights, strict=True))

    logits = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    truth = torch.tensor([0, 1, 0, 0, 1, 0])
    loss = TASK.loss(fitted, {"label_smoothing": 0.1}, torch.device("cpu"))
    expected = F.cross_entropy(
        logits, truth, weight=torch.tensor(fitted.class_weights), label_smoothing=0.1
    )
    torch.testing.assert_close(loss(logits, truth), expected)


def test_multilabel_targets_are_a_matrix_with_a_sigmoid_loss_and_no_weights() -> None:
    dataset = _dataset([("a",), ("a", "b"), ("b",), ("a", "c")] * 5, multilabel=True)
    names = TASK.names(dataset)
    targets = TASK.encode(dataset, names)
    assert targets.shape == (20, 3) and targets[1].tolist() == [1.0, 1.0, 0.0]
    fitted = TASK.fit_targets(targets, names)
    assert fitted.info == {"multilabel": True}
    assert fitted.class_weights is None and fitted.warnings == []
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(1))
    loss = TASK.loss(fitted, {}, torch.device("cpu"))
    torch.testing.assert_close(
        loss(logits, targets), F.binary_cross_entropy_with_logits(logits, targets)
    )


def test_selection_prefers_macro_f1_then_a_lower_loss_and_knows_a_perfect_probe() -> None:
    fitted = TASK.fit_targets(torch.tensor([0, 1, 2]), ["a", "b", "c"])
    truth = torch.tensor([0, 1, 2, 2])
    sharp = TASK.summarize(torch.eye(3)[truth] * 5, truth, fitted)
    soft = TASK.summarize(torch.eye(3)[truth], truth, fitted)
    assert sharp["val_macro_f1"] == soft["val_macro_f1"] == 1.0
    assert TASK.score(sharp) > TASK.score(soft)
    assert TASK.perfect(sharp)
    wrong = TASK.summarize(torch.eye(3)[torch.tensor([0, 1, 2, 1])] * 5, truth, fitted)
    assert not TASK.perfect(wrong) and TASK.score(soft) > TASK.score(wrong)


def _overconfident(n: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    calibrated = torch.randn(n, k, generator=g) * 1.5
    targets = torch.multinomial(torch.softmax(calibrated, dim=1), 1, generator=g).squeeze(1)
    return calibrated * 3, targets


def test_final_report_calibrates_and_draws_the_reliability_diagram() -> None:
    logits, targets = _overconfident(300, 4, seed=0)
    fitted = TASK.fit_targets(targets, list("wxyz"))
    metrics, config = TASK.final_report(logits, targets, fitted)

    calibration = metrics["calibration"]
    assert calibration["applied"] and config["temperature"] == calibration["temperature"] > 2
    assert (
        calibration["nll_after"] < calibration["nll_before"] == pytest.approx(metrics["val_loss"])
    )
    assert calibration["ece_after"] < calibration["ece_before"]
    assert calibration["bins"] == 9
    for side in ("before", "after"):
        diagram = metrics["reliability"][side]
        assert sum(b["count"] for b in diagram) == 300 and len(diagram) == 9
        confidences = [b["confidence"] for b in diagram]
        assert confidences == sorted(confidences)
    assert config == {
        "labels": list("wxyz"),
        "multilabel": False,
        "temperature": calibration["temperature"],
        "thresholds": None,
    }
    assert metrics["accuracy"] == pytest.approx(float((logits.argmax(1) == targets).float().mean()))


def test_multilabel_thresholds_are_chosen_on_the_calibrated_probabilities() -> None:
    g = torch.Generator().manual_seed(2)
    calibrated = torch.randn(400, 3, generator=g)
    targets = (torch.rand(400, 3, generator=g) < torch.sigmoid(calibrated)).float()
    logits = calibrated * 3
    fitted = TASK.fit_targets(targets, ["p", "q", "r"])
    metrics, config = TASK.final_report(logits, targets, fitted)

    temperature = config["temperature"]
    assert metrics["calibration"]["applied"] and temperature > 1.5
    expected = best_thresholds(
        targets.numpy() > 0.5, probabilities(logits, temperature, multilabel=True).numpy()
    )
    assert config["thresholds"] == pytest.approx(expected)
    assert config["multilabel"] is True and "micro_f1" in metrics
    assert sum(b["count"] for b in metrics["reliability"]["after"]) == 1200


def _overlapping(counts: Sequence[int], shift: float, noise_dims: int, seed: int) -> tuple:
    """Gaussian features whose first dimension moves with the label; the rest is noise."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(count, k) for k, count in enumerate(counts)])
    x = rng.normal(size=(len(y), 1 + noise_dims))
    x[:, 0] += shift * y
    return torch.from_numpy(x).float(), torch.from_numpy(y)


@pytest.mark.parametrize("seed", range(4))
def test_the_probe_keeps_class_weights_only_when_they_score_better_out_of_fold(
    seed: int,
) -> None:
    features, targets = _overlapping((60, 40, 20), 0.7, 10, seed)
    fitted = TASK.fit_targets(targets, ["a", "b", "c"])
    assert fitted.class_weights is not None
    rows = np.arange(len(targets))
    chosen = TASK.probe(features, targets, rows, fitted, seed=0)

    # The same probe with the weights given, and without: the kept one scores at least as well.
    without = TASK.fit_targets(targets, ["a", "b", "c"])
    without.class_weights = None
    plain = TASK.probe(features, targets, rows, without, seed=0)
    assert "class_weights" not in plain.details  # nothing to choose on unweighted targets

    def pooled(fit: ProbeFit) -> tuple:
        return tuple(TASK.score(TASK.summarize(fit.oof, targets, fitted)))

    scores = chosen.details["class_weight_scores"]
    assert scores["none"] == pytest.approx(list(pooled(plain)))
    kept = chosen.details["class_weights"]
    if kept == "none":
        assert tuple(scores["none"]) > tuple(scores["inverse_frequency"])
        torch.testing.assert_close(chosen.oof, plain.oof)
    else:
        assert kept == "inverse_frequency"
        assert tuple(scores["inverse_frequency"]) >= tuple(scores["none"])
        assert not torch.allclose(chosen.oof, plain.oof)


def test_class_weights_stay_where_the_rare_label_needs_them() -> None:
    # 90 against 10 with overlapping features: unweighted, the probe all but ignores the rare
    # label; weighted, it finds it, and macro-F1 says so.
    for seed in range(3):
        features, targets = _overlapping((90, 10), 1.0, 0, seed)
        fitted = TASK.fit_targets(targets, ["common", "rare"])
        fit = TASK.probe(features, targets, np.arange(100), fitted, seed=0)
        assert fit.details["class_weights"] == "inverse_frequency"
