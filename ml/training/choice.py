"""Which model a job keeps: the linear probe, or the fine-tuned one, and why (in words)."""

from collections.abc import Callable

import torch

from ml.tasks import Task
from ml.training.finetune import Baseline, FineTuneResult, cpu_state_dict
from ml.training.spec import Method


def choose_method(
    method: Method,
    task: Task,
    model: torch.nn.Module,
    probe_l2: float,
    probe_summary: dict[str, float],
    tune: Callable[[Baseline | None], FineTuneResult],
) -> tuple[str, str, FineTuneResult | None]:
    """(method kept, why, the fine-tuning run if there was one).

    `tune(baseline)` fine-tunes from the probe's head. auto passes the probe as the baseline
    to beat and keeps it unless fine-tuning does better on validation (by the task's score);
    full passes none. `probe_summary` is the probe's out-of-fold summary on the validation rows.
    """
    if method == "linear_probe":
        return (
            "linear_probe",
            f"linear_probe was requested (L2 {probe_l2:g} chosen by cross-validation)",
            None,
        )
    name, key = task.headline_label, task.headline
    probe_value = probe_summary[key]
    if method == "auto" and task.perfect(probe_summary):
        reason = f"the linear probe is already perfect on validation ({name} {probe_value:g})"
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
        if best[key] != probe_value:
            gain = f"improved validation {name} from {probe_value:.4f} to {best[key]:.4f}"
        else:
            gain = (
                f"matched validation {name} ({probe_value:.4f}) with a lower validation loss "
                f"({best['val_loss']:.4f} vs {probe_summary['val_loss']:.4f})"
            )
        reason = f"fine-tuning from the linear probe's head {gain} (epoch {tuned.best_epoch})"
        return "lp_ft", reason, tuned
    best_tuned = max(tuned.history, key=task.score, default=None)
    at_best = "nothing" if best_tuned is None else f"at best {best_tuned[key]:.4f}"
    reason = (
        f"fine-tuning did not beat the linear probe on validation ({name} {probe_value:.4f}, "
        f"fine-tuned {at_best} over {tuned.epochs_run} epochs)"
    )
    return "linear_probe", reason, tuned
