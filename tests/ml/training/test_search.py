"""auto's search, piece by piece: the budget, the epochs it pays for, when a fine-tuning run
counts as clearly losing, and which candidate is kept and why."""

import pytest
import torch

from ml.tasks import get_task
from ml.training.choice import decide
from ml.training.search import Abandon, Budget, Candidate, epochs_that_fit, pick, validation_noise

TASK = get_task("image_classification")


def _summary(f1: float, loss: float = 0.5) -> dict[str, float]:
    return {"val_macro_f1": f1, "val_loss": loss, "val_accuracy": f1}


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_counts_from_its_start() -> None:
    clock = _Clock()
    budget = Budget(30, clock)
    clock.now += 12
    assert budget.spent() == 12 and budget.left() == 18 and not budget.exhausted()
    clock.now += 18
    assert budget.exhausted()
    assert Budget(None, clock).left() == float("inf")


@pytest.mark.parametrize(
    ("left", "epoch", "planned", "fits"),
    [(100, 10, 5, 5), (100, 30, 5, 3), (5, 10, 5, 0), (float("inf"), 10, 7, 7)],
)
def test_epochs_that_fit_the_budget(left: float, epoch: float, planned: int, fits: int) -> None:
    assert epochs_that_fit(left, epoch, planned) == fits


def test_a_run_far_behind_that_stops_improving_is_abandoned() -> None:
    abandon = Abandon(TASK, _summary(0.90), noise=0.02, name="linear probe")
    assert abandon(_summary(0.50)) is None  # the first epoch cannot show a trend
    assert abandon(_summary(0.70)) is None  # far behind, but closing the gap quickly
    reason = abandon(_summary(0.705))
    assert reason is not None and "below the linear probe" in reason


def test_a_run_within_the_noise_is_never_abandoned() -> None:
    abandon = Abandon(TASK, _summary(0.90), noise=0.03, name="linear probe")
    assert all(abandon(_summary(0.85)) is None for _ in range(5))  # 0.05 < 2 x 0.03


def test_validation_noise_is_the_bootstrap_standard_error() -> None:
    fitted = TASK.fit_targets(torch.zeros(400, 2), ["a", "b"])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(200, 1)
    right = torch.where(targets > 0, 3.0, -3.0)
    outputs = torch.where(torch.rand(400, 1) < 0.8, right, -right)  # about 80% correct
    noise = validation_noise(TASK, outputs, targets, fitted, seed=0)
    assert 0.01 < noise < 0.04  # sqrt(0.8 x 0.2 / 400) = 0.02
    assert validation_noise(TASK, right[:100], targets[:100], fitted, seed=0) == 0.0


def test_the_best_candidate_is_kept_and_a_tie_goes_to_the_cheaper() -> None:
    classical = Candidate("classical", "pixels", _summary(0.80), 1.0)
    probe = Candidate("linear_probe", "frozen", _summary(0.85), 9.0)
    tuned = Candidate("lp_ft", "tuned", _summary(0.85), 60.0)
    assert pick(TASK, [classical, probe, tuned]) is probe
    skipped = Candidate("lp_ft", "tuned", status="skipped", reason="no time")
    kept, reason = decide("auto", TASK, [classical, probe, skipped], 1e-3)
    assert kept is probe
    assert "classical lost (macro-F1 0.8000)" in reason and "lp_ft skipped: no time" in reason


def test_requested_methods_keep_what_was_asked_for() -> None:
    probe = Candidate("linear_probe", "frozen", _summary(0.85))
    tuned = Candidate("lp_ft", "tuned", _summary(0.60), reason="best validation epoch 2 of 3")
    assert decide("full", TASK, [probe, tuned], 1e-3)[0] is tuned
    kept, reason = decide("linear_probe", TASK, [probe], 0.003)
    assert kept is probe and "L2 0.003" in reason


def test_a_costlier_candidate_must_win_by_more_than_the_noise() -> None:
    probe = Candidate("linear_probe", "frozen", _summary(0.830), 100.0)
    tuned = Candidate("lp_ft", "tuned", _summary(0.835), 370.0)
    assert pick(TASK, [probe, tuned], noise=0.026) is probe  # 0.005 is well within the noise
    assert pick(TASK, [probe, tuned], noise=0.002) is tuned
    kept, reason = decide("auto", TASK, [probe, tuned], 1e-3, noise=0.026)
    assert kept is probe
    assert "within one standard error (0.0260) of the best on validation (lp_ft" in reason


def test_a_cheaper_candidate_is_never_kept_below_the_probe() -> None:
    classical = Candidate("classical", "tf-idf", _summary(0.9594), 6.0)
    probe = Candidate("linear_probe", "frozen", _summary(0.9597), 31.0)
    tuned = Candidate("lp_ft", "tuned", _summary(0.9600), 133.0)
    assert pick(TASK, [classical, probe, tuned], noise=0.019) is probe
    assert pick(TASK, [classical, probe, tuned], noise=0.0) is tuned
