"""A job's plan: the resolved hyperparameters, the candidates `auto` will try and what they
should cost, computed from numbers the API and the worker both have (the dataset's sizes and
input statistics, the backbone, the worker class), so a dry run shows what the real run does.

The estimates come from the cost model in ml/training/costs.py; the real run measures its own
costs in its first seconds and spends its time budget by those (ml/training/search.py).
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ml.backbones.spec import BackboneSpec
from ml.datasets.inputs import InputStats, input_stats
from ml.training.costs import (
    CLASSICAL_SECONDS_PER_EXAMPLE,
    FIXED_SECONDS,
    probe_seconds,
    seconds_per_example,
    solve_seconds,
)
from ml.training.hparams import resolve_hyperparameters
from ml.training.split import validation_fraction

__all__ = ["InputStats", "Plan", "input_stats", "nominal_split", "plan_job"]


@dataclass(frozen=True)
class Plan:
    method: str
    hyperparameters: dict[str, Any]  # resolved: what the run uses
    candidates: list[dict[str, Any]]  # in the order the run tries them
    estimated_seconds: float
    time_budget_seconds: float | None  # auto's fine-tuning budget; None for the other methods
    device: str  # the worker class the estimates are for

    def to_public(self) -> dict[str, Any]:
        return asdict(self)


def nominal_split(
    num_examples: int, num_validation_examples: int | None, validation_split: float | None
) -> tuple[int, int]:
    """(training, validation) example counts a plan assumes: a separate validation dataset's
    size, or the split fraction of the training dataset (the stratified split rounds per
    label, so the real counts can differ by a few)."""
    if num_validation_examples is not None:
        return num_examples, num_validation_examples
    held_out = max(1, round(validation_fraction(num_examples, validation_split) * num_examples))
    return max(1, num_examples - held_out), held_out


def _unit(backbone: BackboneSpec) -> str:
    return "px" if backbone.modality == "image" else "tokens"


def _probe_size(backbone: BackboneSpec, hp: Mapping[str, Any]) -> int:
    if backbone.modality == "image":
        return int(hp.get("probe_image_size", hp["image_size"]))
    return int(hp["max_length"])


def _tuning_size(backbone: BackboneSpec, hp: Mapping[str, Any]) -> int:
    return int(hp["image_size"] if backbone.modality == "image" else hp["max_length"])


def _classical(backbone: BackboneSpec, examples: int, device: str) -> dict[str, Any]:
    kind = "raw downsampled pixels" if backbone.modality == "image" else "TF-IDF features"
    return {
        "name": "classical",
        "description": f"a linear model on {kind}",
        "estimated_seconds": round(
            examples * CLASSICAL_SECONDS_PER_EXAMPLE + solve_seconds(device), 1
        ),
    }


def _fine_tuning(
    backbone: BackboneSpec, hp: Mapping[str, Any], num_train: int, num_val: int, device: str
) -> dict[str, Any]:
    size = _tuning_size(backbone, hp)
    step = seconds_per_example(backbone, "train", size, device)
    check = seconds_per_example(backbone, "forward", size, device)
    epoch = num_train * step + num_val * check
    seconds = hp["epochs"] * epoch
    if backbone.modality == "image" and size != hp.get("probe_image_size", size):
        # A linear head fitted at the tuning size first, on features computed there.
        seconds += (num_train + num_val) * check + solve_seconds(device)
    if "time_budget_seconds" in hp:
        seconds = min(seconds, float(hp["time_budget_seconds"]))
    return {
        "name": "lp_ft",
        "description": f"fine-tuning every weight from a linear head at {size} {_unit(backbone)}, "
        f"up to {hp['epochs']} epochs",
        "estimated_seconds": round(seconds, 1),
        "estimated_epoch_seconds": round(epoch, 2),
    }


def plan_job(
    *,
    method: str,
    hyperparameters: Mapping[str, Any],
    backbone: BackboneSpec,
    num_examples: int,
    num_validation_examples: int | None,
    validation_split: float | None,
    stats: InputStats,
    device: str,
    task_defaults: Mapping[str, Any] | None = None,
) -> Plan:
    """What a job with these inputs will run, in order, with estimated seconds on `device`."""
    num_train, num_val = nominal_split(num_examples, num_validation_examples, validation_split)
    hp = resolve_hyperparameters(
        hyperparameters,
        method=method,
        num_train=num_train,
        num_val=num_val,
        backbone=backbone,
        device=device,
        task_defaults=task_defaults,
        stats=stats,
    )
    everything = num_train + num_val
    candidates = [_classical(backbone, everything, device)] if method == "auto" else []
    probe_size = _probe_size(backbone, hp)
    candidates.append(
        {
            "name": "linear_probe",
            "description": f"a linear model on frozen {backbone.id} features at "
            f"{probe_size} {_unit(backbone)}",
            "estimated_seconds": round(probe_seconds(backbone, everything, probe_size, device), 1),
        }
    )
    if method != "linear_probe":
        candidates.append(_fine_tuning(backbone, hp, num_train, num_val, device))
    fixed = FIXED_SECONDS["cuda" if device == "cuda" else "cpu"]
    return Plan(
        method=method,
        hyperparameters=hp,
        candidates=candidates,
        estimated_seconds=round(fixed + sum(c["estimated_seconds"] for c in candidates), 1),
        time_budget_seconds=hp.get("time_budget_seconds"),
        device=device,
    )
