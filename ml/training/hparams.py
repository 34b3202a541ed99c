"""Hyperparameters: validating what a client sent, and turning "auto" into concrete values."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml.backbones.spec import BackboneSpec
from ml.datasets.inputs import InputStats
from ml.training.sizing import (
    auto_time_budget,
    backbone_image_size,
    tuning_image_size,
    tuning_max_length,
)

AUTO = "auto"


@dataclass(frozen=True)
class _Range:
    kind: type  # int, float or bool
    low: float = 0.0
    high: float = 0.0
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False

    def check(self, value: Any) -> str | None:
        if self.kind is bool:
            return None if isinstance(value, bool) else 'must be true, false or "auto"'
        # bool is an int in Python; true/false is never a number here.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f'must be a number or "{AUTO}"'
        if self.kind is int and not isinstance(value, int):
            return "must be an integer"
        if not math.isfinite(value):
            return "must be finite"
        too_low = value <= self.low if self.low_open else value < self.low
        too_high = value >= self.high if self.high_open else value > self.high
        if too_low or too_high:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"must be in {left}{self.low:g}, {self.high:g}{right}"
        return None


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def check(self, value: Any) -> str | None:
        if value in self.options:
            return None
        return f'must be one of {", ".join(repr(o) for o in self.options)} or "{AUTO}"'


FIELDS: dict[str, _Range | Choice] = {
    "epochs": _Range(int, 1, 100),
    "batch_size": _Range(int, 1, 512),
    "learning_rate": _Range(float, 0, 1, low_open=True),  # the backbone's; the head gets more
    "warmup_ratio": _Range(float, 0, 0.5),
    "weight_decay": _Range(float, 0, 1),
    "patience": _Range(int, 1, 50),  # epochs without a better validation score before stopping
    "max_length": _Range(int, 8, 512),  # text only
    "image_size": _Range(int, 32, 1024),  # images only: fine-tuning and the tuned model
    "probe_image_size": _Range(int, 32, 1024),  # images only: the frozen-features probe
    "label_smoothing": _Range(float, 0, 0.5, high_open=True),
    "freeze_batchnorm": _Range(bool),  # keep BatchNorm running statistics fixed while tuning
    # Regression only: squared error, or Huber's (robust to a few wrong targets).
    "loss": Choice(("mse", "huber")),
    # auto only: seconds the search may spend fine-tuning after the probe.
    "time_budget_seconds": _Range(int, 10, 86400),
}
_TEXT_ONLY = {"max_length"}
_IMAGE_ONLY = {"image_size", "probe_image_size", "freeze_batchnorm"}
_TASK_ONLY = {"loss"}  # kept only where the task's defaults name them
_FINE_TUNING_ONLY = {
    "epochs",
    "learning_rate",
    "warmup_ratio",
    "weight_decay",
    "patience",
    "label_smoothing",
    "freeze_batchnorm",
}

# Past this size a backbone gets a gentler learning rate.
_LARGE_BACKBONE_PARAMS = 50_000_000
# Fine-tuning needs enough optimizer steps to move from the probe's head; small datasets get
# more epochs (bounded) to reach this, and early stopping cuts runs that stop improving.
_TARGET_STEPS = {"image": 300, "text": 250}
_EPOCH_BOUNDS = {"image": (3, 15), "text": (2, 10)}
# BatchNorm statistics from small augmented batches hurt (docs/measurements.md); only a large
# dataset with full batches re-estimates them usefully.
_BATCHNORM_TRAIN_MIN_EXAMPLES = 5000
_BATCHNORM_TRAIN_MIN_BATCH = 32


def given(hp: Mapping[str, Any], name: str) -> bool:
    """Whether the client set `name` to a value (not "auto", not left out)."""
    return hp.get(name, AUTO) != AUTO


def validate_hyperparameters(hp: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each problem; empty when every value is usable or "auto"."""
    errors = []
    for name, value in hp.items():
        rule = FIELDS.get(name)
        if rule is None:
            errors.append((name, f"unknown hyperparameter; known: {', '.join(FIELDS)}"))
        elif value != AUTO and (message := rule.check(value)) is not None:
            errors.append((name, message))
    return errors


def _auto_values(
    num_train: int, backbone: BackboneSpec, batch_size: int, stats: InputStats
) -> dict[str, Any]:
    modality = backbone.modality
    steps_per_epoch = max(1, num_train // batch_size)
    low, high = _EPOCH_BOUNDS[modality]
    large = backbone.num_params > _LARGE_BACKBONE_PARAMS
    values: dict[str, Any] = {
        "epochs": min(high, max(low, math.ceil(_TARGET_STEPS[modality] / steps_per_epoch))),
        "learning_rate": {"image": 5e-5 if large else 1e-4, "text": 2e-5 if large else 5e-5}[
            modality
        ],
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "patience": 3,
        "label_smoothing": 0.0,
    }
    if modality == "text":
        values["max_length"] = tuning_max_length(stats, backbone)
    else:
        values["image_size"] = tuning_image_size(stats, backbone)
        values["probe_image_size"] = backbone_image_size(backbone)
        values["freeze_batchnorm"] = not (
            num_train >= _BATCHNORM_TRAIN_MIN_EXAMPLES and batch_size >= _BATCHNORM_TRAIN_MIN_BATCH
        )
    return values


def resolve_hyperparameters(
    hp: Mapping[str, Any],
    *,
    method: str,
    num_train: int,
    backbone: BackboneSpec,
    device: str,
    task_defaults: Mapping[str, Any] | None = None,
    stats: InputStats | None = None,
    num_val: int = 0,
) -> dict[str, Any]:
    """Concrete values for every hyperparameter the backbone's modality and the task use.

    Values given by the client win; "auto" or missing ones come from the dataset size, its
    input statistics (ml/training/sizing.py), the backbone and ``task_defaults`` (the task's
    own, e.g. regression's loss). Hyperparameters of the other modality, task hyperparameters
    this task does not have, and the time budget of a method other than auto are dropped.
    """
    given = {k: v for k, v in hp.items() if v != AUTO}
    if "batch_size" in given:
        batch_size = int(given["batch_size"])
    else:
        batch_size = (16 if backbone.modality == "text" else 32) * (2 if device == "cuda" else 1)
        batch_size = max(1, min(batch_size, num_train))
    stats = stats or InputStats()
    resolved = {"batch_size": batch_size} | _auto_values(num_train, backbone, batch_size, stats)
    task_defaults = task_defaults or {}
    unused = (_IMAGE_ONLY if backbone.modality == "text" else _TEXT_ONLY) | (
        _TASK_ONLY - task_defaults.keys()
    )
    resolved |= dict(task_defaults)
    resolved |= {k: v for k, v in given.items() if k not in unused}
    if method == "auto" and "time_budget_seconds" not in given:
        probe_size = int(resolved.get("probe_image_size") or resolved.get("max_length") or 0)
        resolved["time_budget_seconds"] = auto_time_budget(
            backbone, num_train + num_val, probe_size, device
        )
    elif method != "auto":
        resolved.pop("time_budget_seconds", None)
    if method == "linear_probe" and "image_size" in resolved:
        # Only the probe runs: at the size asked for by either name, else the backbone's.
        probe_size = resolved.pop("probe_image_size")
        resolved["image_size"] = given.get("image_size", probe_size)
    if method == "linear_probe":
        # The probe fits its head to convergence on frozen features and picks its own L2
        # strength on validation: only the preprocessing and the extraction batch remain.
        resolved = {k: v for k, v in resolved.items() if k not in _FINE_TUNING_ONLY}
    return resolved
