"""What a training job is given (TrainSpec), who it reports to (TrainHooks), how it stops early."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ml.backbones.spec import BackboneSpec

Method = Literal["auto", "linear_probe", "full"]
StopReason = Literal["cancel", "preempt"]
CHECKPOINT = "checkpoint"  # the checkpoint's directory in a job's work_dir
# What a run kept, in the engine's words (the manifest's "method"), to the contract's methods:
# "lp_ft" is how `full` trains (a linear probe first, then every weight from its head);
# "classical" is auto's linear model on raw pixels or TF-IDF (ml/classical).
ContractMethod = Literal["linear_probe", "full", "classical"]
_CONTRACT_METHOD: dict[str, ContractMethod] = {
    "linear_probe": "linear_probe",
    "lp_ft": "full",
    "classical": "classical",
}


def contract_method(kept: object) -> ContractMethod | None:
    """The contract's `method_chosen` for a manifest's "method" (None when there is none)."""
    return _CONTRACT_METHOD.get(str(kept)) if kept is not None else None


@dataclass(frozen=True)
class TrainSpec:
    dataset_dir: Path
    backbone: BackboneSpec
    work_dir: Path  # this job's scratch: checkpoints live in work_dir / "checkpoint"
    cache_dir: Path  # shared between jobs: decoded images, tokenized text, frozen features
    method: Method = "auto"
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)  # values or "auto"
    validation_dataset_dir: Path | None = None
    validation_split: float | None = None  # None: chosen by the service (see split.py)
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available, else cpu
    checkpoint_every_seconds: float = 300.0


class TrainHooks(Protocol):
    """The job's link to the outside world: events, progress, and whether to stop."""

    def event(
        self,
        level: Literal["info", "warn", "error"],
        message: str,
        *,
        type: Literal["message", "metrics"] = "message",
        data: dict[str, Any] | None = None,
    ) -> None: ...

    def progress(
        self,
        *,
        epoch: int,
        epochs: int,
        step: int,
        total_steps: int,
        eta_seconds: float | None,
        metrics: dict[str, float],
    ) -> None: ...

    def should_stop(self) -> StopReason | None: ...

    def checkpoint_saved(self, directory: Path) -> None:
        """A complete checkpoint is now at `directory` (the worker copies it to the store)."""
        ...


class TrainingStopped(Exception):
    """Raised out of run_training on request. On "preempt" a checkpoint was written first."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason: StopReason = reason


class NullHooks:
    """TrainHooks that report nothing and never stop: for engine calls whose events were
    already reported (re-reading a job's split) or are not wanted (benchmarks)."""

    def event(
        self,
        level: Literal["info", "warn", "error"],
        message: str,
        *,
        type: Literal["message", "metrics"] = "message",
        data: dict[str, Any] | None = None,
    ) -> None:
        return None

    def progress(self, **_: Any) -> None:
        return None

    def should_stop(self) -> StopReason | None:
        return None

    def checkpoint_saved(self, directory: Path) -> None:
        return None
