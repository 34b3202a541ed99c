"""What a task is: everything that differs between predicting labels and predicting numbers.

A task is one object (registered in ``ml.tasks``) that the rest of Hone asks, never branches on:
- data: which columns hold its target, how a cell becomes a target, the audit's task section,
  how targets are written to and read from the dataset manifest;
- training: the targets as a tensor, the validation split, the head's width, the loss, the
  cross-fitted frozen-feature probe, the per-epoch summary and the score that selects models
  and epochs, and the final report with the calibration serving needs;
- serving: a ``ServingHead`` built from the artifact's config that turns raw model outputs
  into the contract's prediction objects.

Classification (single- and multi-label) and regression are the two families; each modality
("image", "text") gets its own registered instance, named ``<modality>_<family>``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel

if TYPE_CHECKING:
    from ml.datasets.options import IngestLimits, IngestOptions
    from ml.datasets.records import Candidate, SkipLog
    from ml.datasets.store import StoredDataset

Modality = Literal["image", "text"]
Target = tuple[Any, ...]  # labels (str) of a classification example, numbers of a regression one
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Score = tuple[float, ...]  # higher is better; compared as tuples


@dataclass(frozen=True)
class PredictOptions:
    """What a prediction request may ask for, beyond its inputs."""

    top_k: int = 5  # classification: how many labels with their probabilities
    coverage: float = 0.9  # regression: the interval's coverage, in (0, 1)


@dataclass
class Fitted:
    """What a task learned from the training targets before any model is fitted.

    ``transform`` maps encoded targets to what the loss consumes (regression: standardised);
    ``info`` is recorded in the artifact config and the job's events.
    """

    num_outputs: int
    names: list[str]  # labels (classification) or target names (regression)
    info: dict[str, Any] = field(default_factory=dict)
    transform: Callable[[torch.Tensor], torch.Tensor] = lambda t: t
    class_weights: list[float] | None = None
    warnings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Set by the trainer before final_report: "linear_probe" when the probe's head is kept
    # (fitted by the probe's own objective), "lp_ft" when the fine-tuned model is.
    kept: str | None = None


@dataclass
class ProbeFit:
    """A cross-fitted linear head on frozen features.

    ``weight``/``bias`` were refitted on every example at the chosen strength (the head a probe
    version serves); ``train_weight``/``train_bias`` on the training rows only (where
    fine-tuning starts, so validation stays unseen by it). ``oof`` holds every example's
    out-of-fold outputs (rows in the order of the features given), in the loss's space.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    train_weight: torch.Tensor
    train_bias: torch.Tensor
    l2: float
    oof: torch.Tensor
    folds: int
    details: dict[str, Any] = field(default_factory=dict)


class ServingHead(ABC):
    """Raw outputs [n, num_outputs] of a served model to contract-shaped predictions."""

    names: list[str]  # labels, or target names: one per output

    @abstractmethod
    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, or values on the targets' own scale."""

    @abstractmethod
    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict[str, Any]]:
        """One prediction object per row."""

    @abstractmethod
    def check(self, options: PredictOptions) -> None:
        """Raise ValueError (shown to the client) when this model cannot answer ``options``."""

    @abstractmethod
    def compare(self, values: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        """How far another runtime's postprocessed values are from eager torch's:
        ``agreement`` (share of rows with the same answer) and ``max_abs_diff`` (probability,
        or standard deviations of the target)."""

    def accuracy(self, values: np.ndarray, truth: Sequence[Any] | None) -> float | None:
        """A runtime's accuracy on labelled validation inputs, where the task has one."""
        return None


class Task(ABC):
    """One kind of prediction problem on one modality. Instances are registered by name."""

    name: str
    family: str  # "classification" | "regression"
    modality: Modality
    headline: str  # the validation metric a person reads first, e.g. "val_macro_f1"
    headline_label: str  # how a sentence names it, e.g. "macro-F1"
    target_field: str = "label_column"  # the upload's form field naming the target column(s)
    # The task's own hyperparameters and their "auto" values (validated in ml/training/hparams).
    hyperparameters: dict[str, Any] = {}
    # The pydantic models of the objects its serving head answers: the contract's shapes.
    prediction_schemas: tuple[type[BaseModel], ...] = ()

    # --- data -----------------------------------------------------------------------------

    @abstractmethod
    def columns(self, options: IngestOptions) -> tuple[str, ...]:
        """The CSV/JSONL columns (or labels.csv columns) that hold this task's target."""

    @abstractmethod
    def parse_target(self, cells: Sequence[object], options: IngestOptions) -> Target:
        """One example's target from its cells; raises ml.datasets.records.SkipExampleError."""

    @abstractmethod
    def merge_targets(self, known: Target, new: Target, options: IngestOptions) -> Target:
        """labels.csv lists a file twice: the merged target, or SkipExampleError."""

    @abstractmethod
    def audit(
        self, kept: list[Candidate], skips: SkipLog, limits: IngestLimits
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the report's task section, warnings); raises IngestError when no model can be
        trained on ``kept`` (e.g. one label, a constant target)."""

    @abstractmethod
    def manifest_header(self, kept: list[Candidate], options: IngestOptions) -> dict[str, Any]:
        """Top-level manifest fields besides format, task and examples."""

    @abstractmethod
    def row_target(self, target: Target) -> dict[str, Any]:
        """The manifest row's target field(s)."""

    @abstractmethod
    def read_target(self, row: dict[str, Any]) -> Target:
        """A manifest row's target; raises ValueError when it is not this task's."""

    # --- training -------------------------------------------------------------------------

    @abstractmethod
    def names(self, dataset: StoredDataset) -> list[str]:
        """Labels, or target names: one per output of the head."""

    @abstractmethod
    def encode(self, dataset: StoredDataset, names: Sequence[str]) -> torch.Tensor:
        """The targets as a tensor (class indices, a 0/1 matrix, or raw numbers [N, T])."""

    @abstractmethod
    def split(self, targets: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
        """(train rows, validation rows)."""

    @abstractmethod
    def fit_targets(self, targets: torch.Tensor, names: Sequence[str]) -> Fitted:
        """What is learned from the training rows' targets alone (weights, scale)."""

    @abstractmethod
    def loss(self, fitted: Fitted, hp: dict[str, Any], device: torch.device) -> LossFn:
        """The training loss on (outputs, transformed targets)."""

    @abstractmethod
    def probe(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        train_rows: np.ndarray,
        fitted: Fitted,
        *,
        seed: int,
        scale: bool = True,
    ) -> ProbeFit:
        """A cross-fitted linear head on frozen ``features`` (all rows) against transformed
        ``targets``; ``train_rows`` are the rows fine-tuning will train on. ``scale`` False
        keeps the features' own scale where the solver would scale each dimension (TF-IDF's
        weights are already comparable, and scaling them up gives rare terms a voice)."""

    @abstractmethod
    def summarize(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> dict[str, float]:
        """Per-epoch validation summary (``val_loss`` and the headline among them)."""

    @abstractmethod
    def score(self, summary: dict[str, float]) -> Score:
        """Model and epoch selection: higher is better."""

    def perfect(self, summary: dict[str, float]) -> bool:
        """Nothing can do better on validation (auto then skips fine-tuning)."""
        return False

    @abstractmethod
    def final_report(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the version's metrics, the artifact config's task fields) of the kept model,
        from its held-out outputs: calibration is fitted here."""

    # --- serving --------------------------------------------------------------------------

    @abstractmethod
    def serving_head(self, config: dict[str, Any]) -> ServingHead:
        """The head that formats a served version's outputs, from its config.json."""

    def num_outputs(self, config: dict[str, Any]) -> int:
        """The head's width recorded in an artifact config."""
        return len(config["labels"])
