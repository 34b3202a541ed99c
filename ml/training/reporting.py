"""Progress with an ETA from measured step times, throttled so that hooks stay cheap; and
the timed phases of a job's start (model load, data preparation, features), which tell a
user, and bench/job_latency.py, where the time before the first optimizer step went."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ml.training.loop import EpochProgress
from ml.training.spec import TrainHooks

# Progress rows are writes to the registry; a few per second is plenty for a progress bar.
PROGRESS_EVERY_SECONDS = 2.0
# Weight of the newest step time in the moving average that the ETA uses.
_EMA = 0.1


class Reporter:
    def __init__(self, hooks: TrainHooks, epochs: int, steps_per_epoch: int) -> None:
        self.hooks = hooks
        self.epochs = epochs
        self.total_steps = epochs * steps_per_epoch
        self.step_seconds: float | None = None
        self.eval_seconds = 0.0
        self._last_tick = time.perf_counter()
        self._last_report = 0.0

    def restart_clock(self) -> None:
        """Call after work that is not a training step (evaluation, checkpoints)."""
        self._last_tick = time.perf_counter()

    def eta(self, progress: EpochProgress) -> float | None:
        if self.step_seconds is None:
            return None
        evaluations_left = self.epochs - progress.epoch
        steps_left = self.total_steps - progress.step
        return steps_left * self.step_seconds + evaluations_left * self.eval_seconds

    def step(self, progress: EpochProgress) -> None:
        now = time.perf_counter()
        elapsed = now - self._last_tick
        self._last_tick = now
        if self.step_seconds is None:
            self.step_seconds = elapsed
        else:
            self.step_seconds += _EMA * (elapsed - self.step_seconds)
        if now - self._last_report >= PROGRESS_EVERY_SECONDS:
            self.report(progress, {"train_loss": progress.mean_loss})

    def report(self, progress: EpochProgress, metrics: dict[str, float]) -> None:
        self._last_report = time.perf_counter()
        self.hooks.progress(
            epoch=min(progress.epoch + 1, self.epochs),
            epochs=self.epochs,
            step=progress.step,
            total_steps=self.total_steps,
            eta_seconds=self.eta(progress),
            metrics=metrics,
        )


def preparation_ticker(
    hooks: TrainHooks, check: Callable[[], None], total_steps: int, epochs: int
) -> Callable[[], None]:
    """A per-batch callback for the work before fine-tuning (frozen features): runs `check`,
    then reports progress as epoch 0 of `epochs`, with an ETA, every few seconds."""
    started = time.perf_counter()
    done = 0
    last_report = started

    def tick() -> None:
        nonlocal done, last_report
        check()
        now = time.perf_counter()
        if done and now - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = now
            eta = (now - started) / done * max(total_steps - done, 0)
            hooks.progress(
                epoch=0,
                epochs=epochs,
                step=done,
                total_steps=total_steps,
                eta_seconds=eta,
                metrics={},
            )
        done += 1

    return tick


@contextmanager
def timed_phase(hooks: TrainHooks, phase: str, message: str) -> Iterator[None]:
    """Run a block, then record an event "<message> in N s" with ``{"phase", "seconds"}``."""
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    hooks.event(
        "info",
        f"{message} in {seconds:.2f} s",
        data={"phase": phase, "seconds": round(seconds, 4)},
    )


def mark_first_step(hooks: TrainHooks) -> None:
    """The event that marks the job's first optimizer step (every method starts with the
    probe, so it comes just before the probe's first LBFGS step)."""
    hooks.event("info", "training started: first optimizer step", data={"phase": "first_step"})
