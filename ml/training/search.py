"""`auto`'s search: the candidates it tried, what each cost and scored on validation, the time
budget it spends, and when it gives up on a fine-tuning run that is clearly losing.

Every candidate is scored on the same validation rows by the task's score: the classical and
probe candidates by their out-of-fold outputs there, a fine-tuning run by its best epoch's.
"""

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ml.tasks import Fitted, Task

Status = Literal["kept", "lost", "abandoned", "skipped"]
# How many resamples estimate the validation noise, and how many of its standard errors below
# the best candidate a fine-tuning epoch may be before the run counts as clearly losing.
_BOOTSTRAP_RESAMPLES = 200
NOISE_MULTIPLE = 2.0


@dataclass
class Candidate:
    name: str  # "classical" | "linear_probe" | "lp_ft"
    description: str
    validation: dict[str, float] = field(default_factory=dict)  # the task's summary
    seconds: float = 0.0
    status: Status = "lost"
    reason: str = ""

    def public(self) -> dict[str, Any]:
        return asdict(self)


def now() -> float:
    """The search's clock (monotonic seconds)."""
    return time.monotonic()


class Budget:
    """The seconds `auto` may spend from the job's start."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] | None = None):
        self.seconds = seconds
        self.clock = clock or now
        self.started = self.clock()

    def spent(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return math.inf if self.seconds is None else self.seconds - self.spent()

    def exhausted(self) -> bool:
        return self.left() <= 0


def epochs_that_fit(seconds_left: float, epoch_seconds: float, planned: int) -> int:
    """Whole epochs (at most `planned`) that the budget left pays for; 0 when not even one."""
    if epoch_seconds <= 0 or math.isinf(seconds_left):
        return planned
    return max(0, min(planned, math.floor(seconds_left / epoch_seconds)))


def validation_noise(
    task: Task, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted, seed: int
) -> float:
    """The standard error of the task's headline score on these validation rows, by the
    bootstrap: how far apart two equally good models can land here by chance."""
    rows = len(targets)
    if rows < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(_BOOTSTRAP_RESAMPLES):
        picked = torch.from_numpy(rng.integers(0, rows, rows))
        summary = task.summarize(outputs[picked], targets[picked], fitted)
        scores.append(task.score(summary)[0])
    return float(np.std(scores, ddof=1))


def headline_score(task: Task, summary: dict[str, float]) -> float:
    return float(task.score(summary)[0])


class Abandon:
    """Gives up on fine-tuning when, after an epoch, its best validation score so far is more
    than NOISE_MULTIPLE standard errors below the best other candidate's and the last epoch
    did not close the gap by at least one standard error."""

    def __init__(self, task: Task, best_other: dict[str, float], noise: float, name: str):
        self.task = task
        self.target = headline_score(task, best_other)
        self.noise = noise
        self.name = name
        self.previous: float | None = None
        self.best = -math.inf

    def __call__(self, summary: dict[str, float]) -> str | None:
        score = headline_score(self.task, summary)
        improved = self.previous is None or score - self.previous >= self.noise
        self.previous = score
        self.best = max(self.best, score)
        gap = self.target - self.best
        if gap > NOISE_MULTIPLE * self.noise and not improved:
            return (
                f"fine-tuning was {gap:.4f} below the {self.name} on validation (more than "
                f"{NOISE_MULTIPLE:g} standard errors of {self.noise:.4f}) and not closing the gap"
            )
        return None


def best_scored(task: Task, candidates: list[Candidate]) -> Candidate:
    """The best on validation by the task's score; on a tie, the one tried first."""
    scored = [c for c in candidates if c.validation and c.status != "skipped"]
    best = scored[0]
    for candidate in scored[1:]:
        if task.score(candidate.validation) > task.score(best.validation):
            best = candidate
    return best


def pick(
    task: Task,
    candidates: list[Candidate],
    noise: float = 0.0,
    never_below: str = "linear_probe",
) -> Candidate:
    """The one-standard-error rule: the first candidate tried (the cheapest, the simplest)
    whose headline score is within `noise` of the best one's, and not below the
    `never_below` candidate's (auto never ends below the probe on validation). On a few
    hundred validation rows a costlier model that wins by less than the noise wins by chance
    as often as not."""
    best = best_scored(task, candidates)
    floor = headline_score(task, best.validation) - noise
    for candidate in candidates:
        if candidate.name == never_below and candidate.validation:
            floor = max(floor, headline_score(task, candidate.validation))
    for candidate in candidates:
        if candidate is best:
            return best
        usable = bool(candidate.validation) and candidate.status != "skipped"
        if usable and headline_score(task, candidate.validation) >= floor:
            return candidate
    return best
