"""Which model a job keeps: the linear probe, or the fine-tuned one, and why (in words)."""

from collections.abc import Callable

import torch

from ml.training.finetune import Baseline, FineTuneResult, cpu_state_dict
from ml.training.probe import ProbeFit
from ml.training.spec import Method


def choose_method(
    method: Method,
    model: torch.nn.Module,
    probe: ProbeFit,
    probe_summary: dict[str, float],
    tune: Callable[[Baseline | None], FineTuneResult],
) -> tuple[str, str, FineTuneResult | None]:
    """(method kept, why, the fine-tuning run if there was one).

    `tune(baseline)` fine-tunes from the probe's head. auto passes the probe as the baseline
    to beat and keeps it unless fine-tuning does better on validation; full passes none.
    """
    if method == "linear_probe":
        return (
            "linear_probe",
            f"linear_probe was requested (L2 {probe.l2:g} chosen on validation)",
            None,
        )
    probe_f1 = probe_summary["val_macro_f1"]
    if method == "auto" and probe_f1 >= 1.0:
        reason = "the linear probe is already perfect on validation (macro-F1 1.0)"
        return "linear_probe", reason, None
    baseline = Baseline(probe_summary, cpu_state_dict(model)) if method == "auto" else None
    tuned = tune(baseline)
    if method == "full":
        reason = (
            "full was requested: fine-tuned every weight from the linear probe's head (LP-FT); "
            f"best validation epoch {tuned.best_epoch} of {tuned.epochs_run}"
        )
        return "lp_ft", reason, tuned
    if tuned.best_epoch > 0 and tuned.best_summary is not None:
        best = tuned.best_summary
        if best["val_macro_f1"] > probe_f1:
            gain = f"improved validation macro-F1 from {probe_f1:.4f} to {best['val_macro_f1']:.4f}"
        else:
            gain = (
                f"matched validation macro-F1 ({probe_f1:.4f}) with a lower validation loss "
                f"({best['val_loss']:.4f} vs {probe_summary['val_loss']:.4f})"
            )
        reason = f"fine-tuning from the linear probe's head {gain} (epoch {tuned.best_epoch})"
        return "lp_ft", reason, tuned
    best_tuned = max((h["val_macro_f1"] for h in tuned.history), default=float("nan"))
    reason = (
        f"fine-tuning did not beat the linear probe on validation (macro-F1 {probe_f1:.4f}, "
        f"fine-tuned at best {best_tuned:.4f} over {tuned.epochs_run} epochs)"
    )
    return "linear_probe", reason, tuned
