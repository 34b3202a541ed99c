"""Validation examples for choosing a new version's serving runtime (prepare_serving): the
rows the engine validated on, from its own split function (same seed, same fraction)."""

from __future__ import annotations

from typing import Any, Literal

from ml.training.examples import load_job_data
from ml.training.spec import StopReason, TrainSpec

MAX_EXAMPLES = 256


class _Quiet:
    """TrainHooks that record nothing: the split's warnings were reported during training."""

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


def serving_inputs(
    spec: TrainSpec, limit: int = MAX_EXAMPLES
) -> tuple[list[bytes] | list[str], list[int] | None]:
    """(image bytes or texts, their label indices; None for multi-label data)."""
    data = load_job_data(spec, _Quiet())
    rows = [int(i) for i in data.val_rows[:limit]]
    examples = [data.val_set.examples[i] for i in rows]
    inputs: list[bytes] | list[str]
    if data.val_set.task == "image_classification":
        inputs = [e.file.read_bytes() for e in examples if e.file is not None]
    else:
        inputs = [e.text or "" for e in examples]
    if data.val_set.multilabel:
        return inputs, None
    return inputs, [int(data.val_targets[i]) for i in rows]
