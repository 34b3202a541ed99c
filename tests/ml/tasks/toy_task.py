"""A task written the way a new one is added: one module, registered, nothing else changed.

`text_flag`: is a text flagged (the cell says yes/no)? One sigmoid output, BCE loss, a probe
cross-fitted by least squares, accuracy as the metric, `{"flagged": bool, "score": p}` served.
Deliberately plain: it shows the seam, not a good model.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.store import StoredDataset
from ml.tasks.base import Fitted, LossFn, PredictOptions, ProbeFit, Score, ServingHead, Task

_VALUES = {"yes": 1.0, "no": 0.0}


class FlagHead(ServingHead):
    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-raw.astype(np.float64)))

    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict[str, Any]]:
        return [{"flagged": bool(p[0] >= 0.5), "score": float(p[0])} for p in values]

    def check(self, options: PredictOptions) -> None:
        return None

    def compare(self, values: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        same = (values >= 0.5) == (reference >= 0.5)
        return {
            "agreement": float(same.mean()),
            "max_abs_diff": float(abs(values - reference).max()),
        }


class TextFlag(Task):
    name = "text_flag"
    family = "flag"
    modality = "text"
    headline = "val_accuracy"
    headline_label = "accuracy"

    def columns(self, options: IngestOptions) -> tuple[str, ...]:
        return (options.label_column,)

    def parse_target(self, cells: Sequence[object], options: IngestOptions) -> tuple[Any, ...]:
        value = str(cells[0]).strip().lower()
        if value not in _VALUES:
            raise SkipExampleError("invalid_label", f"expected yes or no, not {value!r}")
        return (value,)

    def merge_targets(
        self, known: tuple[Any, ...], new: tuple[Any, ...], options: IngestOptions
    ) -> tuple[Any, ...]:
        if known != new:
            raise SkipExampleError("invalid_label", "flagged both yes and no")
        return known

    def audit(
        self, kept: list[Candidate], skips: SkipLog, limits: IngestLimits
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        flagged = sum(1 for c in kept if c.target == ("yes",))
        if flagged in (0, len(kept)):
            raise IngestError("single_label", "Both yes and no examples are needed.")
        return {"flagged": flagged}, []

    def manifest_header(self, kept: list[Candidate], options: IngestOptions) -> dict[str, Any]:
        return {"multilabel": False, "labels": ["flagged"]}

    def row_target(self, target: tuple[Any, ...]) -> dict[str, Any]:
        return {"labels": list(target)}

    def read_target(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row["labels"])

    def names(self, dataset: StoredDataset) -> list[str]:
        return ["flagged"]

    def encode(self, dataset: StoredDataset, names: Sequence[str]) -> torch.Tensor:
        return torch.tensor([[_VALUES[e.target[0]]] for e in dataset.examples])

    def split(self, targets: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
        order = np.random.default_rng(seed).permutation(len(targets))
        cut = max(1, round(fraction * len(order)))
        return np.sort(order[cut:]), np.sort(order[:cut])

    def fit_targets(self, targets: torch.Tensor, names: Sequence[str]) -> Fitted:
        return Fitted(num_outputs=1, names=list(names))

    def loss(self, fitted: Fitted, hp: dict[str, Any], device: torch.device) -> LossFn:
        return lambda outputs, targets: F.binary_cross_entropy_with_logits(outputs.float(), targets)

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
        x = torch.cat([features.double(), features.new_ones(len(features), 1).double()], dim=1)
        y = (targets.double() * 2 - 1) * 2  # logits of about ±2

        def solve(rows: np.ndarray | torch.Tensor) -> torch.Tensor:
            a = x[rows]
            return torch.linalg.solve(a.T @ a + torch.eye(a.shape[1], dtype=a.dtype), a.T @ y[rows])

        halves = np.array_split(np.random.default_rng(seed).permutation(len(x)), 2)
        oof = torch.empty_like(y)
        for held, rest in ((halves[0], halves[1]), (halves[1], halves[0])):
            oof[held] = x[held] @ solve(rest)
        every, train = solve(np.arange(len(x))), solve(train_rows)
        return ProbeFit(
            weight=every[:-1].T.float(), bias=every[-1].float(),
            train_weight=train[:-1].T.float(), train_bias=train[-1].float(),
            l2=1.0, oof=oof.float(), folds=2,
        )  # fmt: skip

    def summarize(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> dict[str, float]:
        loss = F.binary_cross_entropy_with_logits(outputs.float(), targets.float())
        accuracy = ((outputs > 0).float() == targets).float().mean()
        return {"val_loss": float(loss), "val_accuracy": float(accuracy)}

    def score(self, summary: dict[str, float]) -> Score:
        return (summary["val_accuracy"], -summary["val_loss"])

    def final_report(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        summary = self.summarize(outputs, targets, fitted)
        return {"accuracy": summary["val_accuracy"], "val_loss": summary["val_loss"]}, {
            "labels": ["flagged"]
        }

    def serving_head(self, config: dict[str, Any]) -> ServingHead:
        return FlagHead()
