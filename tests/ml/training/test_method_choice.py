"""How a job decides between the probe and fine-tuning, branch by branch."""

from dataclasses import replace

import pytest
import torch

from ml.tasks import get_task
from ml.training.choice import choose_method
from ml.training.finetune import Baseline, FineTuneResult

PROBE = {"val_macro_f1": 0.80, "val_loss": 0.50, "val_accuracy": 0.8}
TASK = get_task("image_classification")
L2 = 1e-3


def _tuned(best_epoch: int, f1: float, loss: float) -> FineTuneResult:
    history = [{"epoch": 1, "val_macro_f1": f1, "val_loss": loss}]
    best = {"val_macro_f1": f1, "val_loss": loss} if best_epoch else PROBE
    return FineTuneResult(best_summary=best, best_epoch=best_epoch, epochs_run=1, history=history)


@pytest.fixture
def model() -> torch.nn.Module:
    return torch.nn.Linear(2, 2)


def test_linear_probe_never_fine_tunes(model: torch.nn.Module) -> None:
    def tune(baseline: Baseline | None) -> FineTuneResult:
        raise AssertionError("must not fine-tune")

    method, reason, tuned = choose_method("linear_probe", TASK, model, L2, PROBE, tune)
    assert (method, tuned) == ("linear_probe", None)
    assert "requested" in reason


def test_auto_skips_a_perfect_probe(model: torch.nn.Module) -> None:
    def tune(baseline: Baseline | None) -> FineTuneResult:
        raise AssertionError("must not fine-tune")

    perfect = PROBE | {"val_macro_f1": 1.0}
    method, reason, _ = choose_method("auto", TASK, model, L2, perfect, tune)
    assert method == "linear_probe" and "already perfect" in reason


@pytest.mark.parametrize(
    ("tuned", "method", "fragment"),
    [
        (_tuned(2, 0.9, 0.4), "lp_ft", "improved validation macro-F1 from 0.8000 to 0.9000"),
        (_tuned(1, 0.8, 0.3), "lp_ft", "matched validation macro-F1 (0.8000) with a lower"),
        (_tuned(0, 0.7, 0.9), "linear_probe", "did not beat the linear probe"),
    ],
)
def test_auto_keeps_whichever_is_better_on_validation(
    model: torch.nn.Module,
    tuned: FineTuneResult,
    method: str,
    fragment: str,
) -> None:
    baselines: list[Baseline | None] = []

    def tune(baseline: Baseline | None) -> FineTuneResult:
        baselines.append(baseline)
        return tuned

    chosen, reason, result = choose_method("auto", TASK, model, L2, PROBE, tune)
    assert (chosen, result) == (method, tuned)
    assert fragment in reason
    baseline = baselines[0]
    assert baseline is not None and baseline.summary == PROBE
    assert set(baseline.weights) == {"weight", "bias"}


def test_full_always_keeps_the_fine_tuned_model(model: torch.nn.Module) -> None:
    baselines: list[Baseline | None] = []

    def tune(baseline: Baseline | None) -> FineTuneResult:
        baselines.append(baseline)
        return replace(_tuned(1, 0.5, 2.0))

    method, reason, _ = choose_method("full", TASK, model, L2, PROBE, tune)
    assert method == "lp_ft" and "LP-FT" in reason
    assert baselines == [None]  # no probe to beat: the best fine-tuned epoch wins
