"""Fine-tuning epochs: validation after each, best weights kept, early stopping, checkpoints
(every epoch, every checkpoint_every_seconds, and on preemption), exact resume."""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import ModelEmaV3

from ml.checkpoint import load_checkpoint, save_checkpoint
from ml.tasks import Fitted, Task
from ml.training.evaluation import predict
from ml.training.loader import Loader
from ml.training.loop import EpochProgress, build_optimizer, train_one_epoch
from ml.training.reporting import Reporter
from ml.training.search import Budget, epochs_that_fit
from ml.training.spec import TrainHooks, TrainingStopped

StateDict = dict[str, torch.Tensor]
# The weight average each epoch is also validated on (timm's EMA, with its warmup, so the first
# steps are not dominated by the starting weights): on small data the average of the last
# epochs often generalises better than the last weights, and validation decides per epoch.
EMA_DECAY = 0.99


@dataclass
class Baseline:
    """Where fine-tuning starts from and must beat (auto): the linear probe's result."""

    summary: dict[str, float]
    weights: StateDict


@dataclass
class FineTuneResult:
    best_summary: dict[str, float] | None
    best_epoch: int  # 0: nothing beat the baseline
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_step: int | None = None
    best_val: tuple[torch.Tensor, torch.Tensor] | None = None  # (logits, targets) of best_epoch
    stopped_early: str | None = None  # why the run ended before its epochs: budget, abandoned
    abandoned: bool = False


def cpu_state_dict(model: torch.nn.Module) -> StateDict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class _Run:
    """One fine-tuning run's mutable state and what it takes to save and restore it."""

    def __init__(
        self,
        model: torch.nn.Module,
        train_loader: Loader,
        hp: dict[str, Any],
        baseline: Baseline | None,
        fingerprint: str,
        task: Task,
    ) -> None:
        self.model = model
        self.task = task
        self.train_loader = train_loader
        self.fingerprint = fingerprint
        self.optimizer = build_optimizer(
            model, hp["learning_rate"], hp["weight_decay"], train_loader.device
        )
        self.ema = ModelEmaV3(model, decay=EMA_DECAY, use_warmup=True)
        self.progress = EpochProgress(0, 0, 0, torch.zeros((), device=train_loader.device))
        self.best_summary = baseline.summary if baseline else None
        self.best_weights = baseline.weights if baseline else None
        self.best_epoch = 0
        self.best_val: tuple[torch.Tensor, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.history: list[dict[str, float]] = []
        self.loader_rng: torch.Tensor | None = None

    @property
    def best_score(self) -> tuple[float, ...] | None:
        return self.task.score(self.best_summary) if self.best_summary else None

    def state(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": {
                "epoch": self.progress.epoch,
                "batch": self.progress.batch,
                "step": self.progress.step,
                "loss_sum": float(self.progress.loss_sum),
            },
            "loader_rng": self.train_loader.generator.get_state(),
            "rng": _rng_states(),
            "best": {"summary": self.best_summary, "epoch": self.best_epoch, "val": self.best_val},
            "best_weights": self.best_weights,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        p = state["progress"]
        loss_sum = torch.tensor(p["loss_sum"], device=self.progress.loss_sum.device)
        self.progress = EpochProgress(p["epoch"], p["batch"], p["step"], loss_sum)
        self.loader_rng = state["loader_rng"]
        _restore_rng(state["rng"])
        self.best_summary = state["best"]["summary"]
        self.best_epoch = state["best"]["epoch"]
        self.best_val = state["best"]["val"]
        self.best_weights = state["best_weights"]
        self.bad_epochs = state["bad_epochs"]
        self.history = state["history"]


def fine_tune(
    model: torch.nn.Module,
    train_loader: Loader,
    val_loader: Loader,
    hooks: TrainHooks,
    *,
    hp: dict[str, Any],
    task: Task,
    fitted: Fitted,
    baseline: Baseline | None,
    checkpoint_dir: Path,
    checkpoint_every_seconds: float,
    fingerprint: str,
    budget: Budget | None = None,
    abandon: Callable[[dict[str, float]], str | None] | None = None,
) -> FineTuneResult:
    """Fine-tune all of `model` and leave it holding the best weights seen on validation.

    With a baseline, an epoch must beat it to count, and the baseline's weights stay if none
    does. `fingerprint` ties checkpoints to the job's inputs: a checkpoint with another one is
    ignored rather than resumed into a different run.

    With a budget, the first epoch's measured cost decides how many more fit (the schedule is
    re-planned to end there), and a budget spent mid-epoch ends the run after validating what
    it has. `abandon(summary)` is asked after each epoch and ends the run when it gives a reason.
    """
    run = _Run(model, train_loader, hp, baseline, fingerprint, task)
    resumed_from: int | None = None
    saved = load_checkpoint(checkpoint_dir)
    if saved is not None and saved.get("fingerprint") == fingerprint:
        run.restore(saved)
        resumed_from = run.progress.step
        hooks.event(
            "info", f"resuming from step {resumed_from}", data={"resume_step": resumed_from}
        )
    elif saved is not None:
        hooks.event("warn", "ignoring a checkpoint written for different inputs")

    epochs, patience = hp["epochs"], hp["patience"]
    steps_per_epoch = len(train_loader)
    total_steps = epochs * steps_per_epoch
    warmup_steps = round(hp["warmup_ratio"] * total_steps)
    loss_fn = task.loss(fitted, hp, train_loader.device)
    reporter = Reporter(hooks, epochs, steps_per_epoch)
    last_save = time.monotonic()

    def save() -> None:
        nonlocal last_save
        save_checkpoint(checkpoint_dir, run.state())
        hooks.checkpoint_saved(checkpoint_dir)
        last_save = time.monotonic()

    def check() -> None:
        reason = hooks.should_stop()
        if reason == "preempt":
            save()
        if reason is not None:
            raise TrainingStopped(reason)

    def on_step(progress: EpochProgress) -> None:
        run.ema.update(model, step=progress.step)
        reporter.step(progress)
        check()
        if budget is not None and budget.exhausted():
            raise _BudgetSpent
        if time.monotonic() - last_save >= checkpoint_every_seconds:
            save()
            reporter.restart_clock()

    stopped_early: str | None = None
    abandoned = False
    while run.progress.epoch < epochs and run.bad_epochs < patience:
        reporter.restart_clock()
        epoch_started = time.monotonic()
        try:
            train_one_epoch(
                model,
                train_loader,
                run.optimizer,
                loss_fn,
                run.progress,
                total_steps=total_steps,
                warmup_steps=warmup_steps,
                freeze_batchnorm=hp.get("freeze_batchnorm", False),
                rng_state=run.loader_rng,
                on_step=on_step,
            )
        except _BudgetSpent:
            stopped_early = (
                f"the time budget ({budget.seconds:g} s) ran out in epoch {run.progress.epoch + 1}"
                if budget is not None
                else None
            )
        run.loader_rng = None
        started = time.perf_counter()
        val, summary, averaged = _validate(model, run.ema.module, val_loader, task, fitted, check)
        summary = {"train_loss": run.progress.mean_loss} | summary
        reporter.eval_seconds = time.perf_counter() - started
        epoch = run.progress.epoch + 1
        run.history.append({"epoch": epoch, **summary})
        _epoch_event(hooks, epoch, epochs, summary)
        best = run.best_score
        if best is None or task.score(summary) > best:
            run.best_summary, run.best_epoch, run.best_val = summary, epoch, val
            run.best_weights = cpu_state_dict(run.ema.module if averaged else model)
            run.bad_epochs = 0
        else:
            run.bad_epochs += 1
        reporter.report(run.progress, summary)
        run.progress = EpochProgress(
            epoch, 0, run.progress.step, torch.zeros_like(run.progress.loss_sum)
        )
        save()
        if stopped_early is not None:
            break
        if abandon is not None and (why := abandon(summary)) is not None:
            stopped_early, abandoned = why, True
            break
        if budget is not None and epoch == 1 and epochs > 1:
            # The first epoch measured what one costs here: plan the rest to fit the budget.
            more = epochs_that_fit(budget.left(), time.monotonic() - epoch_started, epochs - 1)
            if more < epochs - 1:
                epochs = 1 + more
                total_steps = epochs * steps_per_epoch
                reporter.epochs, reporter.total_steps = epochs, total_steps
                hooks.event(
                    "info",
                    f"the time budget pays for {epochs} fine-tuning epochs at this cost",
                    data={"epochs": epochs, "budget_left_seconds": round(budget.left(), 1)},
                )
        if run.bad_epochs >= patience and epoch < epochs:
            hooks.event(
                "warn",
                f"early stop after epoch {epoch}: no better validation score for {patience} epochs",
                data={"epoch": epoch, "best_epoch": run.best_epoch},
            )

    if run.best_weights is not None:
        model.load_state_dict(run.best_weights)
    return FineTuneResult(
        best_summary=run.best_summary,
        best_epoch=run.best_epoch,
        epochs_run=run.progress.epoch,
        history=run.history,
        resumed_from_step=resumed_from,
        best_val=run.best_val,
        stopped_early=stopped_early,
        abandoned=abandoned,
    )


class _BudgetSpent(Exception):
    """Raised from the step hook to end an epoch when the time budget is gone."""


def _validate(
    model: torch.nn.Module,
    averaged: torch.nn.Module,
    loader: Loader,
    task: Task,
    fitted: Fitted,
    check: Callable[[], None],
) -> tuple[tuple[torch.Tensor, torch.Tensor], dict[str, float], bool]:
    """(outputs, summary, whether they are the weight average's) of whichever of the current
    weights and their moving average scores better on validation."""
    current = predict(model, loader, check)
    current_summary = task.summarize(*current, fitted)
    average = predict(averaged, loader, check)
    average_summary = task.summarize(*average, fitted)
    if task.score(average_summary) > task.score(current_summary):
        return average, average_summary | {"weights_averaged": 1.0}, True
    return current, current_summary | {"weights_averaged": 0.0}, False


def _epoch_event(hooks: TrainHooks, epoch: int, epochs: int, summary: dict[str, float]) -> None:
    text = ", ".join(f"{k} {v:.4f}" for k, v in summary.items())
    hooks.event(
        "info", f"epoch {epoch}/{epochs}: {text}", type="metrics", data={"epoch": epoch, **summary}
    )
