import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.tasks.classification.calibration import (
    choose_temperature,
    ece_bins,
    expected_calibration_error,
    fit_temperature,
    probabilities,
    reliability,
)


def _overconfident(
    n: int = 2000, k: int = 4, scale: float = 4.0, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Logits whose true temperature is `scale`: softmax(logits / scale) is calibrated."""
    g = torch.Generator().manual_seed(seed)
    calibrated = torch.randn(n, k, generator=g) * 1.5
    targets = torch.multinomial(torch.softmax(calibrated, dim=1), 1, generator=g).squeeze(1)
    return calibrated * scale, targets


def test_temperature_recovers_scale_and_reduces_nll_and_ece() -> None:
    logits, targets = _overconfident()
    temperature = fit_temperature(logits, targets)

    assert 3.0 < temperature < 5.0
    assert F.cross_entropy(logits / temperature, targets) < F.cross_entropy(logits, targets)
    before = expected_calibration_error(probabilities(logits, 1.0, False), targets)
    after = expected_calibration_error(probabilities(logits, temperature, False), targets)
    assert after < before / 3


def test_multilabel_temperature_reduces_bce() -> None:
    g = torch.Generator().manual_seed(1)
    calibrated = torch.randn(1000, 3, generator=g)
    targets = (torch.rand(1000, 3, generator=g) < torch.sigmoid(calibrated)).float()
    logits = calibrated * 3
    temperature = fit_temperature(logits, targets, multilabel=True)
    assert 2.0 < temperature < 4.0
    before = F.binary_cross_entropy_with_logits(logits, targets)
    assert F.binary_cross_entropy_with_logits(logits / temperature, targets) < before
    ece_before = expected_calibration_error(torch.sigmoid(logits), targets, multilabel=True)
    ece_after = expected_calibration_error(
        probabilities(logits, temperature, True), targets, multilabel=True
    )
    assert ece_after < ece_before
    choice = choose_temperature(logits, targets, multilabel=True)
    assert choice.applied and choice.temperature == pytest.approx(temperature)


def test_ece_of_a_known_case() -> None:
    # Two predictions at confidence 0.9, one right and one wrong: |0.5 - 0.9| = 0.4.
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    assert abs(expected_calibration_error(probs, torch.tensor([0, 1])) - 0.4) < 1e-6
    # Perfect confidence and always right: no gap.
    assert expected_calibration_error(torch.eye(2), torch.tensor([0, 1])) == 0.0


def test_a_validation_set_without_mistakes_is_not_sharpened() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, -1.0]])
    assert fit_temperature(logits, torch.tensor([0, 1, 0])) == 1.0
    assert not choose_temperature(logits, torch.tensor([0, 1, 0])).applied
    # One mistake bounds the fit: an overconfident model is then softened as usual.
    wrong = torch.tensor([[8.0, 0.0], [0.0, 9.0], [7.0, -1.0], [9.0, 0.0]])
    assert fit_temperature(wrong, torch.tensor([0, 1, 0, 1])) > 1.0


def test_an_overconfident_model_is_softened_because_held_out_nll_falls() -> None:
    logits, targets = _overconfident(n=300, scale=2.0)
    choice = choose_temperature(logits, targets)
    assert choice.applied and 1.5 < choice.temperature < 2.5
    assert choice.nll_after == choice.nll_scaled < choice.nll_before
    assert choice.nll_before == pytest.approx(float(F.cross_entropy(logits, targets)))
    assert choice.folds == 5


def test_a_calibrated_model_keeps_temperature_one() -> None:
    kept, moved = 0, []
    for seed in range(20):
        logits, targets = _overconfident(n=60, scale=1.0, seed=seed)
        choice = choose_temperature(logits, targets)
        if choice.applied:
            moved.append(choice.temperature)
        else:
            kept += 1
            assert choice.temperature == 1.0 and choice.nll_after == choice.nll_before
    # On 60 examples a fitted T ranges over 0.7-1.4, but its held-out NLL mostly loses to
    # T = 1 (fitting every time would move all 20); where it wins, it won on held-out data.
    assert kept >= 14
    assert all(abs(math.log(t)) < 0.35 for t in moved)


def test_bins_grow_with_the_square_root_of_the_sample() -> None:
    assert [ece_bins(n) for n in (1, 3, 60, 300, 1000, 100_000)] == [1, 3, 5, 9, 15, 15]


def _brute_force(confidence: np.ndarray, correct: np.ndarray, bins: int) -> list[tuple]:
    """Sort, cut into equal-count runs with np.array_split, average each run."""
    order = np.argsort(confidence)
    runs = np.array_split(order, bins)
    return [(confidence[r].mean(), correct[r].mean(), len(r)) for r in runs if len(r)]


def test_reliability_bins_and_ece_match_a_brute_force_computation() -> None:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(137, 5, generator=g) * 2
    targets = torch.randint(0, 5, (137,), generator=g)
    probs = torch.softmax(logits, dim=1)
    confidence = probs.max(1).values.numpy().astype(np.float64)
    correct = (probs.argmax(1) == targets).numpy().astype(np.float64)

    diagram = reliability(probs, targets)
    expected = _brute_force(confidence, correct, ece_bins(137))
    assert len(diagram) == ece_bins(137) == 6
    for got, (conf, acc, count) in zip(diagram, expected, strict=True):
        assert got["count"] == count
        assert got["confidence"] == pytest.approx(conf, abs=1e-6)
        assert got["accuracy"] == pytest.approx(acc)
    ece = sum(c * abs(a - p) for p, a, c in expected) / 137
    assert expected_calibration_error(probs, targets) == pytest.approx(ece, abs=1e-6)
    # Multi-label: every (example, label) decision at 0.5, confidence max(p, 1 - p).
    multi = (torch.rand(40, 3, generator=g) < 0.4).float()
    p = torch.sigmoid(torch.randn(40, 3, generator=g))
    conf = torch.maximum(p, 1 - p).ravel().numpy().astype(np.float64)
    hit = ((p >= 0.5) == (multi >= 0.5)).ravel().numpy().astype(np.float64)
    bins = reliability(p, multi, multilabel=True, bins=4)
    assert [b["count"] for b in bins] == [30, 30, 30, 30]
    assert [b["accuracy"] for b in bins] == pytest.approx(
        [a for _, a, _ in _brute_force(conf, hit, 4)]
    )


def test_a_temperature_that_keeps_the_ranking_moves_ece_only_as_far_as_confidences() -> None:
    # Two classes: T rescales every margin, so the confidences' order and the bins stay; a T
    # of 1.02 cannot move the ECE more than it moves a confidence.
    logits, targets = _overconfident(n=60, k=2, scale=1.0, seed=3)
    before = probabilities(logits, 1.0, False)
    after = probabilities(logits, 1.02, False)
    shift = float((before.max(1).values - after.max(1).values).abs().max())
    same_bins = [b["count"] for b in reliability(before, targets)]
    assert same_bins == [b["count"] for b in reliability(after, targets)] == [12] * 5
    change = abs(
        expected_calibration_error(before, targets) - expected_calibration_error(after, targets)
    )
    assert change <= shift + 1e-6
